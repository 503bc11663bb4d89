// What a run records, read back by the real MLflow client (issue 5, acceptance 1 on
// the synthetic pipeline; tests/quickstart does the same on Fashion-MNIST): the same
// params, the same metric histories line by line, tags, artifacts (kiln.log
// included), the model version and its alias. Then the run's end: KILLED with an
// end time on SIGTERM, and after kill -9 (acceptance 3) a store MLflow still reads,
// with the run not FINISHED.
#include <gmock/gmock.h>
#include <sys/wait.h>

#include "registry_cli_support.h"

namespace kiln::test {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

json dump_with_mlflow(const fs::path& registry_root, const std::string& model = "") {
  std::vector<std::string> args = {"dump", (registry_root / "mlruns").string(), "synthetic"};
  if (!model.empty()) args.push_back(model);
  const auto view = registry::testing::run_mlflow_reader(args);
  // Null: no venv, or the reader failed (both already reported as failures).
  if (!view.skip_reason.empty() || !view.summary.contains("runs")) return json();
  return view.summary;
}

// MLflow's history [step, value, timestamp] against kiln's file, line by line.
void expect_same_history(const json& history, const fs::path& file) {
  const auto lines = metric_lines(file);
  ASSERT_EQ(history.size(), lines.size()) << file;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(history[i][2].get<double>(), lines[i][0]) << file << " line " << i + 1;
    EXPECT_EQ(history[i][1].get<double>(), lines[i][1]) << file << " line " << i + 1;
    EXPECT_EQ(history[i][0].get<double>(), lines[i][2]) << file << " line " << i + 1;
  }
}

TEST_F(CliTest, MlflowReadsTheRunAndModelAsKilnWroteThem) {
  const CommandResult result = kiln({"run", "p.yaml"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto runs = pipeline_runs(registry());
  ASSERT_EQ(runs.size(), 1u);
  const fs::path run_dir = registry() / "mlruns" / runs[0].experiment_id / runs[0].run_id;
  const std::string log = read_text(run_dir / "artifacts" / "kiln.log");
  EXPECT_THAT(log, HasSubstr(" info stage train_data (idx_import): running, key "));
  EXPECT_THAT(log, HasSubstr(" info register: synthetic-mlp version 1 (champion)\n"));
  EXPECT_THAT(log, HasSubstr(" info run " + runs[0].run_id + " ended: FINISHED\n"));
  EXPECT_EQ(read_text(run_dir / "tags" / "kiln.gpu.count"), "0");

  const json dump = dump_with_mlflow(registry(), kModel);
  if (dump.is_null()) GTEST_FAIL() << KILN_PYTHON " is missing (tools/install-deps.sh makes it)";
  ASSERT_EQ(dump["runs"].size(), 1u);
  const json& run = dump["runs"][0];
  EXPECT_EQ(run["run_id"], runs[0].run_id);
  EXPECT_EQ(run["status"], "FINISHED");
  std::map<std::string, std::string> params;
  for (const auto& entry : fs::recursive_directory_iterator(run_dir / "params"))
    if (entry.is_regular_file())
      params[entry.path().lexically_relative(run_dir / "params").generic_string()] =
          read_text(entry.path());
  EXPECT_EQ(run["params"].get<decltype(params)>(), params);
  EXPECT_GE(params.size(), 10u);
  std::size_t metric_files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(run_dir / "metrics")) {
    if (!entry.is_regular_file()) continue;
    ++metric_files;
    const std::string key = entry.path().lexically_relative(run_dir / "metrics").generic_string();
    ASSERT_TRUE(run["history"].contains(key)) << key;
    expect_same_history(run["history"][key], entry.path());
  }
  EXPECT_EQ(run["history"].size(), metric_files);
  for (const char* tag : {"kiln.version", "kiln.host", "mlflow.user", "kiln.gpu.count",
                          "kiln.dataset.train_data", "kiln.dataset.test_data", "kiln.plugin.train"})
    EXPECT_TRUE(run["tags"].contains(tag)) << tag;
  for (const char* artifact : {"evaluation/evaluate.json", "kiln.log", "model/README.md",
                               "model/model.safetensors", "pipeline.yaml"})
    EXPECT_NE(std::find(run["artifacts"].begin(), run["artifacts"].end(), artifact),
              run["artifacts"].end())
        << artifact << " in " << run["artifacts"];
  EXPECT_EQ(dump["aliases"], json({{"champion", "1"}}));
  ASSERT_EQ(dump["versions"].size(), 1u);
  EXPECT_EQ(dump["versions"][0]["run_id"], runs[0].run_id);
  EXPECT_EQ(dump["versions"][0]["aliases"], json({"champion"}));
  EXPECT_EQ(dump["versions"][0]["tags"]["kiln.gate"], "passed");
}

TEST_F(CliTest, SigtermMarksTheRunKilledWithAnEndTime) {
  const fs::path err_file = dir_ / "stderr.txt";
  const pid_t pid =
      spawn_kiln({"run", "p.yaml", "train.with.epochs=100000"}, dir_.path(), registry(), err_file);
  const ChildGuard guard(pid);
  ASSERT_TRUE(wait_for([&] {
    return read_text(err_file).find("train  epoch") != std::string::npos;
  })) << read_text(err_file);
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const auto runs = pipeline_runs(registry());
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, registry::RunStatus::Killed);
  ASSERT_TRUE(runs[0].end_time_ms.has_value());
  EXPECT_GE(*runs[0].end_time_ms, runs[0].start_time_ms);
  const fs::path run_dir = registry() / "mlruns" / runs[0].experiment_id / runs[0].run_id;
  EXPECT_THAT(read_text(run_dir / "artifacts" / "kiln.log"), HasSubstr("ended: KILLED\n"));
}

// Acceptance 3, the registry half: kill -9 in the middle of training. (Resuming
// from the checkpoint on the next run belongs to the train stage's checkpoints.)
// The run stays RUNNING until the next kiln command on the registry sees that no
// process holds its lease (issue 14, finding 8).
TEST_F(CliTest, KillNineMidTrainingLeavesARegistryMlflowReads) {
  const fs::path err_file = dir_ / "stderr.txt";
  const pid_t pid =
      spawn_kiln({"run", "p.yaml", "train.with.epochs=100000"}, dir_.path(), registry(), err_file);
  const ChildGuard guard(pid);
  fs::path loss;
  ASSERT_TRUE(wait_for([&] {
    const auto runs = pipeline_runs(registry());
    if (runs.empty()) return false;
    loss = registry() / "mlruns" / runs[0].experiment_id / runs[0].run_id / "metrics" / "train" /
           "loss";
    return fs::exists(loss) && lines_of(read_text(loss)).size() >= 3;
  })) << read_text(err_file);
  // While its process lives, the run is left alone by other kiln commands.
  EXPECT_EQ(kiln({"registry", "ls", "runs"}).exit_code, 0);
  EXPECT_EQ(pipeline_runs(registry()).at(0).status, registry::RunStatus::Running);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  auto runs = pipeline_runs(registry());
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, registry::RunStatus::Running);
  EXPECT_FALSE(runs[0].end_time_ms.has_value());
  const json dump = dump_with_mlflow(registry());
  if (dump.is_null()) GTEST_FAIL() << KILN_PYTHON " is missing (tools/install-deps.sh makes it)";
  ASSERT_EQ(dump["runs"].size(), 1u);
  EXPECT_EQ(dump["runs"][0]["status"], "RUNNING");
  expect_same_history(dump["runs"][0]["history"]["train/loss"], loss);
  const auto scan =
      registry::testing::run_mlflow_reader({"scan", (registry() / "mlruns").string()});
  EXPECT_EQ(scan.summary.value("runs", -1), 1) << scan.summary;

  // The next kiln command on the registry finds its process gone: KILLED, with an
  // end time and the reason, and MLflow reads it so.
  const CommandResult ls = kiln({"registry", "ls", "runs"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_THAT(ls.err, HasSubstr("its process is gone; marked KILLED"));
  runs = pipeline_runs(registry());
  EXPECT_EQ(runs[0].status, registry::RunStatus::Killed);
  ASSERT_TRUE(runs[0].end_time_ms.has_value());
  EXPECT_GE(*runs[0].end_time_ms, runs[0].start_time_ms);
  const fs::path run_dir = registry() / "mlruns" / runs[0].experiment_id / runs[0].run_id;
  EXPECT_THAT(read_text(run_dir / "tags" / "kiln.killed_reason"), HasSubstr("kill -9"));
  EXPECT_EQ(dump_with_mlflow(registry())["runs"][0]["status"], "KILLED");
  EXPECT_FALSE(fs::exists(registry() / "leases" / "runs" / (runs[0].run_id + ".lock")));
}

}  // namespace
}  // namespace kiln::test
