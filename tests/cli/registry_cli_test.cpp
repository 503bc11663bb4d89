// kiln registry ls / show / diff / promote / rollback through the real executable,
// and bad input to them (issue 5, acceptance 5): one clear error line, the usage or
// data exit code, and a registry left exactly as it was.
#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

#include "registry_cli_support.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;
namespace fs = std::filesystem;

class RegistryCliTest : public CliTest {
 protected:
  // Two runs of the pipeline: two versions, champion on the second.
  void SetUp() override {
    CliTest::SetUp();
    ASSERT_EQ(kiln({"run", "p.yaml"}).exit_code, 0);
    ASSERT_EQ(kiln({"run", "p.yaml", "train.with.lr=0.002"}).exit_code, 0);
    const auto runs = pipeline_runs(registry());
    ASSERT_EQ(runs.size(), 2u);
    first_ = runs[0].run_id;
    second_ = runs[1].run_id;
  }
  // `args` fails with `exit_code` and one error line `expected` (a prefix), and the
  // registry is byte for byte what it was.
  void expect_refused(const std::vector<std::string>& args, int exit_code,
                      const std::string& expected) {
    const auto before = snapshot(registry());
    const CommandResult result = kiln(args);
    EXPECT_EQ(result.exit_code, exit_code) << result.err;
    EXPECT_EQ(lines_of(result.err).size(), 1u) << result.err;
    EXPECT_THAT(result.err, StartsWith(expected));
    EXPECT_EQ(result.out, "");
    EXPECT_EQ(snapshot(registry()), before) << "the registry changed";
  }
  fs::path weights(std::int64_t version) {
    const auto source = registry::path_of_file_uri(model_version(registry(), version).source);
    return *source / "model.safetensors";
  }

  std::string first_, second_;
};

TEST_F(RegistryCliTest, LsListsRunsModelsAndDatasets) {
  const CommandResult all = kiln({"registry", "ls"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.out, StartsWith("runs:\nrun id"));
  EXPECT_THAT(all.out, HasSubstr("\nmodels:\n"));
  EXPECT_THAT(all.out, HasSubstr("\ndatasets:\n"));
  const CommandResult runs = kiln({"registry", "ls", "runs"});
  ASSERT_EQ(runs.exit_code, 0) << runs.err;
  const auto lines = lines_of(runs.out);
  ASSERT_EQ(lines.size(), 3u) << runs.out;
  EXPECT_THAT(lines[1], StartsWith(first_ + "  synthetic   synthetic-"));
  EXPECT_THAT(lines[1], HasSubstr(" FINISHED "));
  EXPECT_THAT(lines[2], StartsWith(second_));
  const CommandResult models = kiln({"registry", "ls", "models"});
  EXPECT_EQ(models.out,
            "model          versions  latest  aliases\n"
            "synthetic-mlp  2         2       champion=2\n");
  const CommandResult datasets = kiln({"registry", "ls", "datasets"});
  EXPECT_THAT(datasets.out, HasSubstr("synthetic-train"));
  EXPECT_THAT(datasets.out, HasSubstr("x u8 [1000, 28, 28], y u8 [1000]"));
  EXPECT_THAT(datasets.out, HasSubstr("synthetic-test"));
  EXPECT_EQ(kiln({"registry", "ls", "experiments"}).exit_code, 2);
}

TEST_F(RegistryCliTest, ShowARunAModelAndAVersion) {
  const CommandResult run = kiln({"registry", "show", first_});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, StartsWith("run " + first_ + " (synthetic-"));
  EXPECT_THAT(run.out, HasSubstr("\nstatus: FINISHED\n"));
  EXPECT_THAT(run.out, MatchesRegex("(.|\n)*\n  train.with.lr +0.003\n(.|\n)*"));
  EXPECT_THAT(run.out, MatchesRegex("(.|\n)*\n  train/loss +[0-9.e-]+  \\(step 60\\)\n(.|\n)*"));
  EXPECT_THAT(run.out, HasSubstr("\n  kiln.log\n"));
  EXPECT_THAT(run.out, HasSubstr("\n  model/model.safetensors\n"));

  const CommandResult model = kiln({"registry", "show", kModel});
  ASSERT_EQ(model.exit_code, 0) << model.err;
  EXPECT_THAT(model.out, HasSubstr("version  created (UTC)"));
  EXPECT_THAT(model.out, MatchesRegex("(.|\n)*\n2 +[-0-9T:Z]+  " + second_ +
                                      "  passed +[0-9.]+ +champion\n(.|\n)*"));
  EXPECT_THAT(model.out, HasSubstr("set       champion -> 2  (was 1)"));

  const CommandResult version = kiln({"registry", "show", "synthetic-mlp@champion"});
  ASSERT_EQ(version.exit_code, 0) << version.err;
  EXPECT_THAT(
      version.out,
      StartsWith("model synthetic-mlp version 2\naliases: champion\nrun: " + second_ + "\n"));
  EXPECT_THAT(version.out, HasSubstr("  kiln.test_dataset "));
  EXPECT_THAT(version.out, HasSubstr("\nweights: " + weights(2).string() + "\n"));
  EXPECT_THAT(version.out,
              MatchesRegex("(.|\n)*\n  layers\\.[0-9]+\\.weight +F32 +\\[32, 784\\]\n(.|\n)*"));
  EXPECT_EQ(kiln({"registry", "show", "synthetic-mlp@1"}).exit_code, 0);
}

TEST_F(RegistryCliTest, DiffShowsParamsAndFinalMetricsSideBySide) {
  const CommandResult diff = kiln({"registry", "diff", first_, second_});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_THAT(diff.out, MatchesRegex("(.|\n)*\n  train.with.lr +0.003 +0.002 +\\*\n(.|\n)*"));
  EXPECT_THAT(diff.out, MatchesRegex("(.|\n)*\n  train.with.epochs +3 +3 *\n(.|\n)*"));
  EXPECT_THAT(diff.out, MatchesRegex("(.|\n)*\nmetrics \\(final\\):\n(.|\n)*\n  eval/accuracy "
                                     "(.|\n)*"));
}

TEST_F(RegistryCliTest, BadNamesAreRefusedAndChangeNothing) {
  const std::string promote_error = "kiln: config error: registry: ";
  for (const std::string bad : {"a/b", "a/../b", "..", "../synthetic-mlp", "my model"})
    expect_refused({"registry", "promote", bad, "1"}, 2,
                   promote_error + "model name '" + bad + "'");
  for (const std::string bad : {"a/b", "..", "cham pion", "../champion"})
    expect_refused({"registry", "promote", kModel, "1", "--alias", bad}, 2,
                   promote_error + "alias '" + bad + "'");
  expect_refused({"registry", "rollback", "my model"}, 2,
                 promote_error + "model name 'my model': must not contain spaces");
  expect_refused({"registry", "show", "synthetic-mlp@../x"}, 2, promote_error + "alias '../x'");
  // NUL cannot travel in a command-line argument; it can in a pipeline value.
  expect_refused({"run", "p.yaml", "register.with.model_name=\"bad\\0name\""}, 2,
                 "kiln: config error: override 'register.with.model_name=\"bad\\0name\"': "
                 "register.with.model_name: registry: model name 'bad\\x00name': must not "
                 "contain NUL");
  expect_refused({"run", "p.yaml", "register.with.alias=\"cham pion\""}, 2,
                 "kiln: config error: override");
}

TEST_F(RegistryCliTest, PromotingAVersionThatDoesNotExistChangesNothing) {
  expect_refused({"registry", "promote", kModel, "9", "--alias", "champion"}, 2,
                 "kiln: config error: registry: model 'synthetic-mlp' has no version 9\n");
  expect_refused({"registry", "promote", "other-model", "1"}, 2,
                 "kiln: config error: registry: model name 'other-model': no such model");
  expect_refused({"registry", "promote", kModel, "0"}, 2, "kiln: config error: ");
  expect_refused({"registry", "promote", kModel, "two"}, 2, "kiln: config error: ");
}

TEST_F(RegistryCliTest, ADirectoryThatIsNotARegistryIsRefused) {
  const fs::path other = dir_ / "my-project";
  write_text(other / "notes.txt", "not a registry");
  const auto before = snapshot(other);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"registry", "ls"},
        std::vector<std::string>{"registry", "promote", kModel, "1"},
        std::vector<std::string>{"run", "p.yaml"}}) {
    std::vector<std::string> full = {"--registry", other.string()};
    full.insert(full.end(), args.begin(), args.end());
    const CommandResult result = kiln(full);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_EQ(result.err,
              "kiln: config error: registry " + other.string() +
                  ": not a kiln registry: the directory is not empty and has none of "
                  "mlruns/, datasets/, stages/, jobs/; point --registry (or KILN_REGISTRY) "
                  "at a registry or an empty directory\n");
  }
  EXPECT_EQ(snapshot(other), before);
  const CommandResult file = kiln({"--registry", (other / "notes.txt").string(), "registry", "ls"});
  EXPECT_EQ(file.exit_code, 2);
  EXPECT_EQ(file.err, "kiln: config error: registry " + (other / "notes.txt").string() +
                          ": not a directory\n");
  const CommandResult missing = kiln({"--registry", (dir_ / "nope").string(), "registry", "ls"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_FALSE(fs::exists(dir_ / "nope"));
}

// An oversized or malformed safetensors header, given to `registry show` (which
// reads the weights' header) and to `evaluate` (which loads the model).
TEST_F(RegistryCliTest, MalformedWeightsAreADataErrorNamingTheFile) {
  std::string bytes = read_text(weights(1));
  std::string oversized = bytes;
  oversized.replace(0, 8, std::string("\x00\x00\x00\x00\x00\x01\x00\x00", 8));
  write_text(weights(1), oversized);
  expect_refused({"registry", "show", "synthetic-mlp@1"}, 3,
                 "kiln: data error: " + weights(1).string() +
                     ": header length 1099511627776 exceeds the limit of 104857600 bytes\n");
  std::string malformed = bytes;
  malformed.replace(8, 1, "[");
  write_text(weights(1), malformed);
  expect_refused({"registry", "show", "synthetic-mlp@1"}, 3,
                 "kiln: data error: " + weights(1).string() + ": ");

  // The train stage's cached model, read again by a forced evaluate.
  fs::path cached;
  for (const auto& entry : fs::directory_iterator(registry() / "stages")) {
    if (!fs::exists(entry.path() / "model.safetensors")) continue;
    const auto manifest = nlohmann::json::parse(read_text(entry.path() / "manifest.json"));
    if (manifest["params"]["lr"] == 0.002) cached = entry.path() / "model.safetensors";
  }
  ASSERT_FALSE(cached.empty());
  write_text(cached, oversized);
  const auto mlruns = snapshot(registry() / "mlruns");
  const CommandResult evaluate =
      kiln({"run", "p.yaml", "train.with.lr=0.002", "--force", "evaluate"});
  EXPECT_EQ(evaluate.exit_code, 3) << evaluate.err;
  EXPECT_EQ(lines_of(evaluate.err).back(),
            "kiln: data error: stage 'evaluate' (evaluate): " + cached.string() +
                ": header length 1099511627776 exceeds the limit of 104857600 bytes");
  EXPECT_EQ(snapshot(registry() / "mlruns"), mlruns);
}

}  // namespace
}  // namespace kiln::test
