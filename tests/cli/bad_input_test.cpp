// Bad input through the real kiln executable: one clear error line, the right
// exit code, and nothing written to the registry.
#include <gmock/gmock.h>

#include "cli_fixture.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace fs = std::filesystem;

class BadInputTest : public CliTest {
 protected:
  // Runs `kiln run` on `pipeline` and checks the shared promises of bad input:
  // the exit code, one error line as the last line, an untouched registry.
  std::string run_bad(const std::string& pipeline, int expected_exit,
                      std::vector<std::string> extra = {}) {
    write_text(dir_ / "bad.yaml", pipeline);
    std::vector<std::string> args = {"run", "bad.yaml"};
    args.insert(args.end(), extra.begin(), extra.end());
    const CommandResult result = kiln(args);
    EXPECT_EQ(result.exit_code, expected_exit) << result.err;
    const auto lines = lines_of(result.err);
    EXPECT_FALSE(lines.empty());
    EXPECT_FALSE(fs::exists(registry())) << "the registry was written";
    EXPECT_EQ(result.out, "");
    return lines.empty() ? "" : lines.back();
  }
  void replace(const std::string& from, const std::string& to, std::string& text) {
    text.replace(text.find(from), from.size(), to);
  }
};

TEST_F(BadInputTest, MalformedYaml) {
  const std::string line = run_bad("stages:\n  a:\n    uses: [idx_import\n", 2);
  EXPECT_THAT(line, ::testing::MatchesRegex(
                        "kiln: config error: bad\\.yaml:[0-9]+:[0-9]+: invalid YAML: .*"));
}

TEST_F(BadInputTest, UnknownKeyWithSuggestion) {
  std::string pipeline = synthetic_pipeline();
  replace("    needs: [train_data]", "    neds: [train_data]", pipeline);
  EXPECT_EQ(run_bad(pipeline, 2),
            "kiln: config error: bad.yaml:11:5: stage 'train': unknown key 'neds' (did you mean "
            "'needs'?); expected one of: uses, needs, with");
}

TEST_F(BadInputTest, UnknownParameterWithSuggestion) {
  std::string pipeline = synthetic_pipeline();
  replace("epochs: 3", "epocs: 3", pipeline);
  EXPECT_THAT(run_bad(pipeline, 2),
              StartsWith("kiln: config error: bad.yaml:14:7: stage 'train' (train): unknown "
                         "parameter 'epocs' (did you mean 'epochs'?)"));
}

TEST_F(BadInputTest, WrongType) {
  std::string pipeline = synthetic_pipeline();
  replace("epochs: 3", "epochs: three", pipeline);
  EXPECT_EQ(run_bad(pipeline, 2),
            "kiln: config error: bad.yaml:14:7: train.with.epochs: expected int, got 'three'");
}

TEST_F(BadInputTest, WrongTypeFromAnOverride) {
  EXPECT_EQ(run_bad(synthetic_pipeline(), 2, {"train.with.lr=fast"}),
            "kiln: config error: override 'train.with.lr=fast': train.with.lr: expected float, got "
            "'fast'");
}

TEST_F(BadInputTest, MissingDataFile) {
  std::string pipeline = synthetic_pipeline();
  replace("test-images.idx", "test-imagse.idx", pipeline);
  EXPECT_EQ(run_bad(pipeline, 2),
            "kiln: config error: bad.yaml:8:12: test_data.with.images: file not found: " +
                (dir_.path() / "test-imagse.idx").string());
}

TEST_F(BadInputTest, UnknownStageType) {
  std::string pipeline = synthetic_pipeline();
  replace("uses: train\n", "uses: trian\n", pipeline);
  EXPECT_EQ(
      run_bad(pipeline, 2),
      "kiln: config error: bad.yaml:10:11: unknown stage type 'trian' (did you mean 'train'?); "
      "known types: drift, evaluate, idx_import, import, register, split, train, validate");
}

TEST_F(BadInputTest, DagCycle) {
  std::string pipeline = synthetic_pipeline();
  replace("needs: [train_data]", "needs: [train_data, register]", pipeline);
  EXPECT_EQ(run_bad(pipeline, 2),
            "kiln: config error: bad.yaml:9:3: stages form a cycle: train -> register -> train");
}

class TruncatedGzipTest : public BadInputTest {
 protected:
  void SetUp() override {
    BadInputTest::SetUp();
    const fs::path real = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (!fs::exists(real)) GTEST_FAIL() << real << " is missing (install dataset-fashion-mnist)";
    const std::string bytes = read_text(real);
    write_text(dir_ / "cut-labels.gz", bytes.substr(0, bytes.size() / 2));
  }
};

TEST_F(TruncatedGzipTest, InTheFirstStageWritesNothing) {
  std::string pipeline = synthetic_pipeline();
  replace("train-labels.idx", "cut-labels.gz", pipeline);
  const std::string line = run_bad(pipeline, 3);
  EXPECT_THAT(line,
              StartsWith("kiln: data error: stage 'train_data' (idx_import): " +
                         (dir_.path() / "cut-labels.gz").string() + ": truncated gzip stream"));
}

// A later stage's bad input keeps what earlier stages completed (a valid cache
// entry and dataset version) but leaves no trace of itself: no dataset from the
// bad file, no run, no model.
TEST_F(TruncatedGzipTest, InALaterStageKeepsOnlyCompletedStages) {
  std::string pipeline = synthetic_pipeline();
  replace("test-labels.idx", "cut-labels.gz", pipeline);
  write_text(dir_ / "bad.yaml", pipeline);
  const CommandResult result = kiln({"run", "bad.yaml"});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_THAT(lines_of(result.err).back(),
              StartsWith("kiln: data error: stage 'test_data' (idx_import): " +
                         (dir_.path() / "cut-labels.gz").string() + ": truncated gzip stream"));
  std::size_t datasets = 0, committed = 0;
  for (const auto& entry : fs::directory_iterator(registry() / "datasets"))
    datasets += entry.path().extension() == ".h5";
  for (const auto& entry : fs::directory_iterator(registry() / "stages"))
    committed += fs::exists(entry.path() / "manifest.json");
  EXPECT_EQ(datasets, 1u);   // the training set only
  EXPECT_EQ(committed, 1u);  // train_data only
  EXPECT_TRUE(fs::is_empty(registry() / "stages" / ".work"));
  EXPECT_FALSE(fs::exists(registry() / "mlruns"));
}

TEST_F(BadInputTest, GateFailureExitsWithTheGateCode) {
  const CommandResult result = kiln({"run", "p.yaml", "evaluate.with.gate.loss=1e-9"});
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_THAT(
      lines_of(result.err).back(),
      StartsWith("kiln: gate failed: stage 'evaluate' (evaluate): gate refused the model: loss"));
  EXPECT_FALSE(fs::exists(registry() / "mlruns" / "models" / "synthetic-mlp"));
}

TEST_F(BadInputTest, UnknownCommandAndMissingPipelineAreUsageErrors) {
  EXPECT_EQ(kiln({"frobnicate"}).exit_code, 2);
  const CommandResult missing = kiln({"run", "nope.yaml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err,
            "kiln: config error: nope.yaml: cannot read pipeline file: no such file\n");
}

}  // namespace
}  // namespace kiln::test
