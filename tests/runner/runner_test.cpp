// The runner with the toy plugin: step cache hits and misses, retraining on new
// data, --force, failures that leave nothing half-written, and the run record.
#include <kiln/error.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/runner.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/support.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const char* kPipeline = R"(name: toy-pipeline
stages:
  src:
    uses: toy_source
    with: {file: data.txt}
  scale:
    uses: toy_scale
    needs: [src]
  sink:
    uses: toy_sink
    needs: [scale]
)";

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_.load_directory(fs::path(KILN_FIXTURE_PLUGINS) / "toy");
    test::write_text(dir_ / "data.txt", "a\nb\nc\n");
    test::write_text(dir_ / "p.yaml", kPipeline);
  }

  Pipeline load(const std::vector<std::string>& overrides = {},
                const std::string& file = "p.yaml") {
    return resolve_pipeline(parse_pipeline(dir_ / file, overrides), catalog_);
  }
  RunResult run(const std::vector<std::string>& overrides = {},
                std::vector<std::string> force = {}) {
    const Pipeline pipeline = load(overrides);
    return Runner(pipeline, {registry(), std::move(force), {}}).run();
  }
  static std::vector<StageStatus> statuses(const std::vector<StageReport>& reports) {
    std::vector<StageStatus> out;
    for (const auto& report : reports) out.push_back(report.status);
    return out;
  }
  std::vector<registry::RunInfo> runs() {
    registry::MlflowStore store(registry());
    const auto experiment = store.find_experiment("toy-pipeline");
    return experiment ? store.list_runs(*experiment) : std::vector<registry::RunInfo>{};
  }
  fs::path registry() const { return dir_ / "registry"; }

  StageCatalog catalog_;
  test::TempDir dir_;
};

constexpr auto kRan = StageStatus::Ran;
constexpr auto kCached = StageStatus::Cached;

TEST_F(RunnerTest, FirstRunExecutesEverythingAndRecordsOneRun) {
  const RunResult result = run();
  EXPECT_EQ(statuses(result.stages), (std::vector<StageStatus>{kRan, kRan, kRan}));
  EXPECT_EQ(result.stages[1].outputs.at(0).meta.at("count").get<double>(), 6.0);
  EXPECT_EQ(test::read_text(result.stages[1].outputs.at(0).path), "6\n");
  ASSERT_EQ(runs().size(), 1u);
  EXPECT_EQ(runs()[0].run_id, result.run_id);
  EXPECT_EQ(runs()[0].status, registry::RunStatus::Finished);
  EXPECT_TRUE(fs::exists(registry() / "stages" / result.stages[2].cache_key / "manifest.json"));
}

TEST_F(RunnerTest, SecondRunIsFullyCachedAndOpensNoRun) {
  run();
  const RunResult second = run();
  EXPECT_EQ(statuses(second.stages), (std::vector<StageStatus>{kCached, kCached, kCached}));
  EXPECT_TRUE(second.run_id.empty());
  EXPECT_EQ(runs().size(), 1u);
  EXPECT_EQ(second.stages[2].outputs.at(0).meta.at("count").get<double>(), 6.0);
}

TEST_F(RunnerTest, ChangedParameterRerunsThatStageAndItsDownstreamOnly) {
  run();
  const RunResult result = run({"scale.with.factor=3"});
  EXPECT_EQ(statuses(result.stages), (std::vector<StageStatus>{kCached, kRan, kRan}));
  EXPECT_EQ(result.stages[2].outputs.at(0).meta.at("count").get<double>(), 9.0);
  EXPECT_EQ(runs().size(), 2u);
}

TEST_F(RunnerTest, NewDataRerunsEverythingAndSameContentElsewhereDoesNot) {
  run();
  test::write_text(dir_ / "data.txt", "a\nb\nc\nd\n");
  EXPECT_EQ(statuses(run().stages), (std::vector<StageStatus>{kRan, kRan, kRan}));
  // The same bytes under another name: the cache key sees content, not names.
  test::write_text(dir_ / "moved.txt", "a\nb\nc\nd\n");
  EXPECT_EQ(statuses(run({"src.with.file=moved.txt"}).stages),
            (std::vector<StageStatus>{kCached, kCached, kCached}));
}

TEST_F(RunnerTest, ForceRerunsTheStageAndReplacesItsEntry) {
  const RunResult first = run();
  const RunResult forced = run({}, {"scale"});
  EXPECT_EQ(statuses(forced.stages), (std::vector<StageStatus>{kCached, kRan, kCached}));
  EXPECT_EQ(forced.stages[1].cache_key, first.stages[1].cache_key);
  EXPECT_TRUE(fs::exists(registry() / "stages" / first.stages[1].cache_key / "manifest.json"));
}

TEST_F(RunnerTest, ForceOfAnUnknownStageIsAConfigError) {
  const Pipeline pipeline = load();
  try {
    Runner(pipeline, {registry(), {"scael"}, {}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("--force scael: no such stage"));
    EXPECT_THAT(e.what(), HasSubstr("(did you mean 'scale'?)"));
  }
}

TEST_F(RunnerTest, PlanShowsCachedWillRunAndWaiting) {
  const Pipeline pipeline = load();
  const Runner runner(pipeline, {registry(), {}, {}});
  EXPECT_EQ(
      statuses(runner.plan()),
      (std::vector<StageStatus>{StageStatus::WillRun, StageStatus::Waiting, StageStatus::Waiting}));
  EXPECT_FALSE(fs::exists(registry()));  // planning writes nothing
  run();
  EXPECT_EQ(statuses(runner.plan()), (std::vector<StageStatus>{kCached, kCached, kCached}));
  const Pipeline changed = load({"scale.with.factor=5"});
  const auto reports = Runner(changed, {registry(), {}, {}}).plan();
  EXPECT_EQ(statuses(reports),
            (std::vector<StageStatus>{kCached, StageStatus::WillRun, StageStatus::Waiting}));
  EXPECT_EQ(reports[2].reason, "runs after 'scale'");
}

TEST_F(RunnerTest, FailureBeforeAnyRunLeavesAFreshRegistryAbsent) {
  test::write_text(
      dir_ / "fail.yaml",
      "name: toy-pipeline\nstages:\n  f:\n    uses: toy_fail\n    with: {kind: data}\n");
  const Pipeline pipeline = load({}, "fail.yaml");
  try {
    Runner(pipeline, {registry(), {}, {}}).run();
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "stage 'f' (toy_fail): toy data problem");
  }
  EXPECT_FALSE(fs::exists(registry()));
}

TEST_F(RunnerTest, FailureAfterARunOpenedMarksItFailedAndCommitsNothingOfTheStage) {
  test::write_text(dir_ / "fail.yaml",
                   std::string(kPipeline) + "  boom:\n    uses: toy_fail\n    needs: [sink]\n");
  const Pipeline pipeline = load({}, "fail.yaml");
  try {
    Runner(pipeline, {registry(), {}, {}}).run();
    FAIL() << "expected StageError";
  } catch (const StageError& e) {
    EXPECT_STREQ(e.what(), "stage 'boom' (toy_fail): toy stage failure");
  }
  ASSERT_EQ(runs().size(), 1u);
  EXPECT_EQ(runs()[0].status, registry::RunStatus::Failed);
  // Three committed stages, no work directory left, the checkpoint kept for resume.
  int committed = 0;
  for (const auto& entry : fs::directory_iterator(registry() / "stages"))
    if (fs::exists(entry.path() / "manifest.json")) ++committed;
  EXPECT_EQ(committed, 3);
  EXPECT_TRUE(fs::is_empty(registry() / "stages" / ".work"));
  int checkpoints = 0;
  for (const auto& entry : fs::recursive_directory_iterator(registry() / "stages" / ".resume"))
    if (entry.path().filename() == "checkpoint") ++checkpoints;
  EXPECT_EQ(checkpoints, 1);
}

TEST_F(RunnerTest, ErrorKindsSurviveTheStageContext) {
  for (const auto& [kind, expected] :
       std::vector<std::pair<std::string, ErrorKind>>{{"gate", ErrorKind::Gate},
                                                      {"interrupt", ErrorKind::Interrupted},
                                                      {"std", ErrorKind::Stage}}) {
    test::write_text(dir_ / "fail.yaml",
                     "stages:\n  f:\n    uses: toy_fail\n    with: {kind: " + kind + "}\n");
    const Pipeline pipeline = load({}, "fail.yaml");
    try {
      Runner(pipeline, {registry(), {}, {}}).run();
      FAIL() << "expected an error for " << kind;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), expected) << kind;
      EXPECT_THAT(e.what(), HasSubstr("stage 'f' (toy_fail): toy "));
    }
  }
}

TEST_F(RunnerTest, RunRecordsParamsTagsAndTheResolvedPipeline) {
  const RunResult result = run({"scale.with.factor=4"});
  const fs::path run_dir = registry() / "mlruns" / result.experiment_id / result.run_id;
  EXPECT_EQ(test::read_text(run_dir / "params" / "scale.with.factor"), "4.0");
  EXPECT_EQ(test::read_text(run_dir / "tags" / "kiln.plugin.toy").substr(0, 13), "1.0.0 sha256:");
  EXPECT_THAT(test::read_text(run_dir / "tags" / "kiln.stage.scale"), HasSubstr("ran "));
  EXPECT_THAT(test::read_text(run_dir / "artifacts" / "pipeline.yaml"), HasSubstr("factor: 4.0"));
  const auto metric = test::lines_of(test::read_text(run_dir / "metrics" / "toy" / "count"));
  ASSERT_EQ(metric.size(), 1u);
  EXPECT_THAT(metric[0], ::testing::EndsWith(" 12 0"));
}

// What a sweep sets on a trial's run: its name, tags (mlflow.parentRunId makes it a
// child run), a look at every metric, and a stop request the stages see.
TEST_F(RunnerTest, HooksNameTheRunTagItSeeItsMetricsAndRequestAStop) {
  const Pipeline pipeline = load();
  RunOptions options{registry(), {}, {}};
  std::vector<std::pair<std::string, double>> seen;
  options.hooks.run_name = "sweep-trial-3";
  options.hooks.tags = {{"mlflow.parentRunId", "0123456789abcdef0123456789abcdef"},
                        {"kiln.sweep.trial", "3"}};
  options.hooks.on_metric = [&](std::string_view key, double value, std::int64_t) {
    seen.emplace_back(std::string(key), value);
  };
  options.hooks.stop_requested = [] { return true; };
  std::string opened;
  options.hooks.on_open = [&](const std::string& run_id) { opened = run_id; };
  const RunResult result = Runner(pipeline, options).run();
  EXPECT_EQ(opened, result.run_id);
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, double>>{{"toy/count", 6.0},
                                                               {"toy/stop_requested", 1.0}}));
  ASSERT_EQ(runs().size(), 1u);
  EXPECT_EQ(runs()[0].run_name, "sweep-trial-3");
  EXPECT_EQ(runs()[0].parent_run_id, "0123456789abcdef0123456789abcdef");
  const auto run = registry::MlflowStore(registry()).open_run(result.run_id);
  EXPECT_EQ(run->tags().at("kiln.sweep.trial"), "3");
}

TEST_F(RunnerTest, WithoutHooksNoStopIsRequested) {
  const RunResult result = run();
  const auto run = registry::MlflowStore(registry()).open_run(result.run_id);
  const auto history = run->metric_history("toy/stop_requested");
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].value, 0.0);
}

// A step manifest is read back from a registry other people can write to: an
// output path that is absolute, climbs with '..' or leaves through a link must not
// become a stage's input (the toy data.txt sits just outside the registry).
TEST_F(RunnerTest, ManifestPathsThatLeaveTheRegistryAreRefused) {
  const RunResult first = run();
  const fs::path manifest = registry() / "stages" / first.stages[1].cache_key / "manifest.json";
  const nlohmann::json original = nlohmann::json::parse(test::read_text(manifest));
  fs::create_symlink(dir_ / "data.txt",
                     registry() / "stages" / first.stages[1].cache_key / "escape.txt");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {(dir_ / "data.txt").string(), "which is absolute"},
      {"../data.txt", "which climbs out with '..'"},
      {"stages/" + first.stages[1].cache_key + "/escape.txt", "which leaves the registry"},
  };
  for (const auto& [path, why] : cases) {
    nlohmann::json edited = original;
    edited["outputs"][0]["path"] = path;
    test::write_text(manifest, edited.dump());
    try {
      run();
      ADD_FAILURE() << path << ": accepted";
    } catch (const DataError& error) {
      const std::string message = error.what();
      EXPECT_THAT(message, HasSubstr(manifest.string() + ": output '"));
      EXPECT_THAT(message, HasSubstr("has path '" + path + "', " + why)) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace kiln
