// Files made to break kiln's readers: a pipeline alias that contains itself, an
// alias bomb, a model file whose stored spec nests 100,000 deep. Each is one error
// line and its exit code, not a crash or the node's memory.
#include <kiln/registry/mlflow_store.h>
#include <kiln/safetensors.h>

#include <gmock/gmock.h>

#include <chrono>

#include "cli_fixture.h"
#include "support/hostile_yaml.h"

namespace kiln::test {
namespace {

using ::testing::MatchesRegex;
using ::testing::SizeIs;

class HostileInputTest : public CliTest {
 protected:
  // kiln with `args`; expects `exit_code` and exactly one line on stderr.
  std::string one_error_line(const std::vector<std::string>& args, int exit_code) {
    const CommandResult result = kiln(args);
    EXPECT_EQ(result.exit_code, exit_code) << result.err;
    const auto lines = lines_of(result.err);
    EXPECT_THAT(lines, SizeIs(1)) << result.err;
    return lines.empty() ? "" : lines.back();
  }
};

TEST_F(HostileInputTest, PlanOnASelfReferencingAliasIsOneConfigError) {
  write_text(dir_ / "self.yaml", self_alias_pipeline());
  EXPECT_THAT(one_error_line({"plan", "self.yaml"}, 2),
              MatchesRegex("kiln: config error: self\\.yaml:5:[0-9]+: the pipeline nests deeper "
                           "than 64 levels .*"));
}

TEST_F(HostileInputTest, PlanOnAnAliasBombStopsWithinTwoSeconds) {
  write_text(dir_ / "bomb.yaml", alias_bomb_pipeline());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(one_error_line({"plan", "bomb.yaml"}, 2),
              MatchesRegex("kiln: config error: bomb\\.yaml:[0-9]+:[0-9]+: the pipeline expands "
                           "to more than 1000000 nodes .*"));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 2.0);
}

TEST_F(HostileInputTest, ExportOnnxOfAModelSpecNested100000DeepIsOneDataError) {
  // A registered version whose weights file holds a spec of 100,000 nested lists.
  const auto weights = dir_ / "artifacts" / "model";
  std::filesystem::create_directories(weights);
  const std::string spec = R"({"input": [3], "layers": )" + std::string(100000, '[') +
                           R"({"linear": {"out": 2}})" + std::string(100000, ']') + "}";
  write_safetensors(weights / "model.safetensors", {}, {{"kiln.model", spec}});
  registry::MlflowStore store(registry());
  const auto run = store.start_run(store.ensure_experiment("hostile"), "hostile");
  store.create_model_version("deep", run->run_id(), registry::file_uri(weights), "", {});
  EXPECT_THAT(one_error_line({"registry", "export-onnx", "deep"}, 3),
              MatchesRegex("kiln: data error: .*model\\.safetensors: kiln\\.model: nests deeper "
                           "than 128 levels"));
}

}  // namespace
}  // namespace kiln::test
