// The real MLflow client (KILN_PYTHON's `mlflow`) reads what kiln writes: runs,
// params, metric histories, tags, artifacts, registered models, versions, aliases.
#include <kiln/fs.h>
#include <kiln/registry/mlflow_store.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "registry/registry_test_support.h"

namespace kiln::registry {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using ScratchDir = kiln::test::TempDir;

using testing::MlflowView;
using testing::run_mlflow_reader;

// Writes the registry the MLflow client is asked about; returns the main run's id.
struct Written {
  std::string run_id;
  std::string child_id;
  std::string experiment_id;
  std::vector<std::pair<std::int64_t, double>> loss;
};

Written write_registry(MlflowStore& store) {
  Written written;
  written.experiment_id = store.ensure_experiment("kiln-mlflow-check");
  auto run = store.start_run(written.experiment_id, "trial ü 1", {{"kiln.version", "0.1.0"}});
  written.run_id = run->run_id();
  run->log_param("optimizer.lr", "0.001");
  run->log_param("model/hidden", "256");
  written.loss = {{0, 2.3}, {1, 1.25}, {2, 0.5}, {3, 0.125}, {4, 1e-05}};
  for (const auto& [step, value] : written.loss) run->log_metric("loss/train", value, step);
  run->log_metric("accuracy", 0.5, 0);
  run->log_metric("accuracy", NAN, 1);
  run->log_metric("accuracy", 0.875, 2);
  run->set_tag("dataset.version", "sha256:abcd");
  write_file_atomic(run->artifact_dir() / "config.yaml", "lr: 0.001\n");
  write_file_atomic(run->artifact_dir() / "model" / "model.safetensors", "weights");
  run->end(RunStatus::Finished);

  auto child = store.start_run(written.experiment_id, "child",
                               {{std::string(kParentRunTag), written.run_id}});
  written.child_id = child->run_id();
  child->end(RunStatus::Killed);

  const std::string source = "file://" + (run->artifact_dir() / "model").string();
  store.create_model_version("fmnist-mlp", written.run_id, source, "first", {{"gate", "passed"}});
  store.create_model_version("fmnist-mlp", written.run_id, source, "second", {{"acc", "0.9"}});
  store.set_alias("fmnist-mlp", "champion", 1);
  store.set_alias("fmnist-mlp", "champion", 2);
  return written;
}

TEST(MlflowClient, ReadsRunsMetricsArtifactsAndRegistry) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  const Written written = write_registry(store);
  const MlflowView view =
      run_mlflow_reader({"summary", store.mlruns().string(), "kiln-mlflow-check", "fmnist-mlp"});
  if (!view.skip_reason.empty()) GTEST_FAIL() << view.skip_reason;
  const json& s = view.summary;
  ASSERT_TRUE(s.contains("runs")) << s.dump();

  EXPECT_EQ(s["experiments"], json({"Default", "kiln-mlflow-check"}));
  EXPECT_EQ(s["experiment"]["id"], written.experiment_id);
  EXPECT_EQ(s["experiment"]["lifecycle_stage"], "active");
  ASSERT_EQ(s["runs"].size(), 2u);
  const json& run = s["runs"][0];
  EXPECT_EQ(run["run_id"], written.run_id);
  EXPECT_EQ(run["run_name"], "trial ü 1");
  EXPECT_EQ(run["status"], "FINISHED");
  EXPECT_EQ(run["experiment_id"], written.experiment_id);
  EXPECT_GE(run["end_time"].get<std::int64_t>(), run["start_time"].get<std::int64_t>());
  EXPECT_EQ(run["params"], json({{"optimizer.lr", "0.001"}, {"model/hidden", "256"}}));
  EXPECT_EQ(run["tags"]["kiln.version"], "0.1.0");
  EXPECT_EQ(run["tags"]["dataset.version"], "sha256:abcd");
  EXPECT_EQ(run["tags"]["mlflow.runName"], "trial ü 1");
  EXPECT_EQ(run["artifacts"], json({"config.yaml", "model/model.safetensors"}));

  const json& loss = run["history"]["loss/train"];
  ASSERT_EQ(loss.size(), written.loss.size());
  for (std::size_t i = 0; i < loss.size(); ++i) {
    EXPECT_EQ(loss[i][0].get<std::int64_t>(), written.loss[i].first);
    EXPECT_EQ(loss[i][1].get<double>(), written.loss[i].second);  // exact round trip
  }
  const json& accuracy = run["history"]["accuracy"];
  ASSERT_EQ(accuracy.size(), 3u);
  EXPECT_EQ(accuracy[1][1], "nan");
  EXPECT_EQ(accuracy[2][1].get<double>(), 0.875);
  EXPECT_EQ(run["latest_metrics"]["loss/train"].get<double>(), 1e-05);

  const json& child = s["runs"][1];
  EXPECT_EQ(child["run_id"], written.child_id);
  EXPECT_EQ(child["status"], "KILLED");
  EXPECT_EQ(child["tags"]["mlflow.parentRunId"], written.run_id);

  EXPECT_EQ(s["models"], json({"fmnist-mlp"}));
  EXPECT_EQ(s["model"]["aliases"], json({{"champion", "2"}}));
  EXPECT_EQ(s["all_versions"], json({1, 2}));
  EXPECT_EQ(s["version_2"]["version"], 2);
  EXPECT_EQ(s["version_2"]["run_id"], written.run_id);
  EXPECT_EQ(s["version_2"]["status"], "READY");
  EXPECT_EQ(s["version_2"]["description"], "second");
  EXPECT_EQ(s["version_2"]["tags"], json({{"acc", "0.9"}}));
  EXPECT_EQ(s["version_2"]["aliases"], json({"champion"}));
  EXPECT_EQ(s["champion"]["version"], 2);
  EXPECT_EQ(s["champion"]["source"], s["version_2"]["source"]);
}

// A writer killed inside write_file_atomic leaves its temporary file beside the
// target; one killed while building a run leaves a directory in staging. Neither
// kiln's readers nor MLflow's may see them.
TEST(MlflowClient, IgnoresLeftoversOfCrashedWriters) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  const Written written = write_registry(store);
  const fs::path run_dir = store.open_run(written.run_id)->directory();
  const fs::path model_dir = store.mlruns() / "models" / "fmnist-mlp";
  for (const fs::path& dir : {store.mlruns() / written.experiment_id, run_dir, model_dir,
                              model_dir / "version-2", store.mlruns()})
    write_file_atomic(dir / ".meta.yaml.tmp-5eed", "status: [unterminated\n");
  const fs::path half_built = scratch.path() / ".mlruns-staging" / "run-0000-dead";
  fs::create_directories(half_built / "metrics");
  write_file_atomic(half_built / "meta.yaml", "run_id: [\n");

  EXPECT_EQ(store.find_experiment("kiln-mlflow-check"), written.experiment_id);
  EXPECT_EQ(store.list_runs(written.experiment_id).size(), 2u);
  EXPECT_EQ(store.list_versions("fmnist-mlp").size(), 2u);
  EXPECT_EQ(store.alias_version("fmnist-mlp", "champion"), 2);
  EXPECT_EQ(store.open_run(written.run_id)->info().status, RunStatus::Finished);

  const MlflowView view =
      run_mlflow_reader({"summary", store.mlruns().string(), "kiln-mlflow-check", "fmnist-mlp"});
  if (!view.skip_reason.empty()) GTEST_FAIL() << view.skip_reason;
  ASSERT_TRUE(view.summary.contains("runs")) << view.summary.dump();
  EXPECT_EQ(view.summary["runs"].size(), 2u);
  EXPECT_EQ(view.summary["runs"][0]["status"], "FINISHED");
  EXPECT_EQ(view.summary["runs"][0]["params"].size(), 2u);
  EXPECT_EQ(view.summary["champion"]["version"], 2);
  const MlflowView scan = run_mlflow_reader({"scan", store.mlruns().string()});
  EXPECT_EQ(scan.summary, nlohmann::json({{"experiments", 2},
                                          {"runs", 2},
                                          {"metric_points", 8},
                                          {"models", 1},
                                          {"versions", 2},
                                          {"aliases", 1}}));
}

}  // namespace
}  // namespace kiln::registry
