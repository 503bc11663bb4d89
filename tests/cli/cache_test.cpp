// The step cache through the CLI: a second run does nothing, a changed learning
// rate re-runs exactly train, evaluate and register.
#include <gmock/gmock.h>

#include <cmath>

#include "cli_fixture.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// stage name -> status column of kiln run's summary table.
std::map<std::string, std::string> statuses(const std::string& out) {
  std::map<std::string, std::string> result;
  for (const auto& line : lines_of(out)) {
    std::istringstream fields(line);
    std::string stage, type, status;
    fields >> stage >> type >> status;
    if (status == "ran" || status == "cached") result[stage] = status;
  }
  return result;
}

std::size_t count_runs(const fs::path& experiment_dir) {
  std::size_t runs = 0;
  for (const auto& entry : fs::directory_iterator(experiment_dir))
    if (entry.is_directory() && fs::exists(entry.path() / "meta.yaml")) ++runs;
  return runs;
}

TEST_F(CliTest, SecondRunIsCachedAndAChangedLearningRateRerunsItsDownstream) {
  const CommandResult first = kiln({"run", "p.yaml"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(statuses(first.out), (std::map<std::string, std::string>{{"train_data", "ran"},
                                                                     {"test_data", "ran"},
                                                                     {"train", "ran"},
                                                                     {"evaluate", "ran"},
                                                                     {"register", "ran"}}));
  EXPECT_THAT(first.out, HasSubstr("synthetic-mlp version 1 (champion)"));
  const fs::path experiment = registry() / "mlruns" / "1";
  EXPECT_EQ(count_runs(experiment), 1u);

  const CommandResult second = kiln({"run", "p.yaml"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  for (const auto& [stage, status] : statuses(second.out)) EXPECT_EQ(status, "cached") << stage;
  EXPECT_EQ(statuses(second.out).size(), 5u);
  EXPECT_THAT(second.out, HasSubstr("nothing ran: every stage was cached"));
  EXPECT_EQ(count_runs(experiment), 1u);
  EXPECT_FALSE(fs::exists(registry() / "mlruns" / "models" / "synthetic-mlp" / "version-2"));

  const CommandResult changed = kiln({"run", "p.yaml", "train.with.lr=0.002"});
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_EQ(statuses(changed.out), (std::map<std::string, std::string>{{"train_data", "cached"},
                                                                       {"test_data", "cached"},
                                                                       {"train", "ran"},
                                                                       {"evaluate", "ran"},
                                                                       {"register", "ran"}}));
  EXPECT_EQ(count_runs(experiment), 2u);
  EXPECT_TRUE(
      fs::exists(registry() / "mlruns" / "models" / "synthetic-mlp" / "version-2" / "meta.yaml"));
}

TEST_F(CliTest, RunRecordsParamsMetricsAndTheModelVersion) {
  const CommandResult result = kiln({"run", "p.yaml"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  fs::path run_dir;
  for (const auto& entry : fs::directory_iterator(registry() / "mlruns" / "1"))
    if (entry.is_directory()) run_dir = entry.path();
  ASSERT_FALSE(run_dir.empty());
  EXPECT_EQ(read_text(run_dir / "params" / "train.with.lr"), "0.003");
  EXPECT_THAT(read_text(run_dir / "params" / "train.with.model"),
              HasSubstr(R"({"linear":{"out":32}})"));
  // 1000 rows at batch 50 over 3 epochs: 60 steps, a line every 5 steps.
  const auto loss = lines_of(read_text(run_dir / "metrics" / "train" / "loss"));
  ASSERT_EQ(loss.size(), 12u);
  EXPECT_THAT(loss.back(), ::testing::EndsWith(" 60"));
  EXPECT_EQ(lines_of(read_text(run_dir / "metrics" / "train" / "samples_per_s")).size(), 12u);
  const auto accuracy = lines_of(read_text(run_dir / "metrics" / "eval" / "accuracy"));
  ASSERT_EQ(accuracy.size(), 1u);
  std::istringstream fields(accuracy[0]);
  double millis = 0, value = 0;
  fields >> millis >> value;
  EXPECT_GT(value, 0.9) << "the synthetic task is easy";
  EXPECT_THAT(read_text(run_dir / "meta.yaml"), HasSubstr("status: 3"));
  EXPECT_TRUE(fs::exists(run_dir / "artifacts" / "model" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(run_dir / "artifacts" / "pipeline.yaml"));
  const fs::path model = registry() / "mlruns" / "models" / "synthetic-mlp";
  EXPECT_THAT(read_text(model / "version-1" / "meta.yaml"), HasSubstr(run_dir.filename().string()));
  EXPECT_EQ(read_text(model / "aliases" / "champion"), "1");
}

// The value column of a metric file: "<ms> <value> <step>" lines.
std::vector<double> metric_values(const fs::path& file) {
  std::vector<double> values;
  for (const auto& line : lines_of(read_text(file))) {
    std::istringstream fields(line);
    double millis = 0, value = 0;
    fields >> millis >> value;
    values.push_back(value);
  }
  return values;
}

TEST_F(CliTest, CosineScheduleDecaysTheLearningRateToZero) {
  const CommandResult result = kiln({"run", "p.yaml", "train.with.schedule=cosine"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  fs::path run_dir;
  for (const auto& entry : fs::directory_iterator(registry() / "mlruns" / "1"))
    if (entry.is_directory()) run_dir = entry.path();
  const auto lr = metric_values(run_dir / "metrics" / "train" / "lr");
  ASSERT_EQ(lr.size(), 12u);
  // Logged after steps 5, 10, ..., 60 of 60: lr at step s is 0.003 * (1 + cos(pi (s-1)/60)) / 2.
  EXPECT_NEAR(lr[0], 0.003 * 0.5 * (1 + std::cos(M_PI * 4 / 60)), 1e-9);
  EXPECT_NEAR(lr[11], 0.003 * 0.5 * (1 + std::cos(M_PI * 59 / 60)), 1e-9);
  for (std::size_t i = 1; i < lr.size(); ++i) EXPECT_LT(lr[i], lr[i - 1]);
}

TEST_F(CliTest, PlanShowsWhatWouldRunAndDotIsGraphviz) {
  const CommandResult before = kiln({"plan", "p.yaml"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_THAT(before.out, HasSubstr("train_data  idx_import  will run"));
  EXPECT_THAT(before.out, HasSubstr("runs after 'train_data'"));
  EXPECT_FALSE(fs::exists(registry()));
  ASSERT_EQ(kiln({"run", "p.yaml"}).exit_code, 0);
  const CommandResult dot = kiln({"plan", "p.yaml", "--dot", "train.with.epochs=4"});
  ASSERT_EQ(dot.exit_code, 0) << dot.err;
  EXPECT_THAT(dot.out, ::testing::StartsWith("digraph \"synthetic\" {"));
  EXPECT_THAT(dot.out, HasSubstr("\"train_data\" -> \"train\";"));
  EXPECT_THAT(dot.out, HasSubstr("label=\"train_data\\nidx_import\\ncached\""));
  EXPECT_THAT(dot.out, HasSubstr("label=\"train\\ntrain\\nwill run\""));
}

TEST_F(CliTest, ForceRerunsOneStage) {
  ASSERT_EQ(kiln({"run", "p.yaml"}).exit_code, 0);
  // An override after --force STAGE stays an override.
  const CommandResult forced =
      kiln({"run", "p.yaml", "--force", "evaluate", "evaluate.with.batch_size=1000"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(statuses(forced.out)["evaluate"], "ran");
  EXPECT_EQ(statuses(forced.out)["train"], "cached");
  // The metrics are the same bytes, so register stays cached: nothing new registered.
  EXPECT_EQ(statuses(forced.out)["register"], "cached");
}

TEST_F(CliTest, OnlyRunsTheNamedStageAndWhatItNeedsThenTheRestIsCached) {
  const CommandResult data = kiln({"run", "p.yaml", "--only", "train_data", "--only", "test_data"});
  ASSERT_EQ(data.exit_code, 0) << data.err;
  EXPECT_EQ(statuses(data.out),
            (std::map<std::string, std::string>{{"train_data", "ran"}, {"test_data", "ran"}}));
  const CommandResult rest = kiln({"run", "p.yaml"});
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_EQ(statuses(rest.out), (std::map<std::string, std::string>{{"train_data", "cached"},
                                                                    {"test_data", "cached"},
                                                                    {"train", "ran"},
                                                                    {"evaluate", "ran"},
                                                                    {"register", "ran"}}));
  const CommandResult bad = kiln({"run", "p.yaml", "--only", "trian"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--only trian: p.yaml has no such stage (did you mean 'train'?)"));
}

}  // namespace
}  // namespace kiln::test
