// `kiln sweep` end to end on a small synthetic task (tests/cli/cli_fixture.h):
// Optuna reads the journal as kiln does, MLflow shows the parent run and its trials,
// a worker killed with -9 loses no trial and runs none twice, a grid covers its
// product, TPE with one worker repeats itself by seed, and bad sweep input is one
// line, exit 2, with nothing written.
#include <kiln/sweep/journal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "cli/cli_fixture.h"
#include "support/child_guard.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;

// train on the first 800 rows, scored on the last 200 each epoch; the winner is
// evaluated on test-* once.
std::string sweep_pipeline(const std::string& sweep, int epochs = 3) {
  return R"(name: tiny-sweep
stages:
  train_data:
    uses: idx_import
    with: {images: train-images.idx, labels: train-labels.idx, name: tiny-train}
  test_data:
    uses: idx_import
    with: {images: test-images.idx, labels: test-labels.idx, name: tiny-test}
  split:
    uses: split
    needs: [train_data]
    with: {validation: 200, order: last}
  train:
    uses: train
    needs: [split]
    with:
      model: {layers: [flatten, {linear: {out: 16}}, relu, {linear: {out: classes}}]}
      epochs: )" +
         std::to_string(epochs) + R"(
      batch_size: 50
      lr: 0.003
      threads: 1
  evaluate:
    uses: evaluate
    needs: [train, test_data]
    with: {gate: {accuracy: 0.1}}
  register:
    uses: register
    needs: [train, evaluate]
    with: {model_name: tiny-sweep-mlp}
sweep:
)" + sweep;
}

const char* kGridSweep = R"(  space:
    train.with.lr: {choice: [0.01, 0.00001]}
    train.with.batch_size: {choice: [25, 100]}
  objective: {metric: val/accuracy, direction: maximize}
  sampler: {type: grid}
  pruner: {type: asha, min_epochs: 1, max_epochs: 3, reduction_factor: 3}
  workers: 2
)";

// What Optuna and MLflow see of the registry, as JSON on stdout.
const char* kReader = R"(import json, sys
import optuna, mlflow
from mlflow.tracking import MlflowClient
registry, name = sys.argv[1], sys.argv[2]
storage = optuna.storages.JournalStorage(
    optuna.storages.journal.JournalFileBackend(f"{registry}/sweeps/{name}/journal.log"))
study = optuna.load_study(study_name=name, storage=storage)
trials = [{"number": t.number, "state": t.state.name, "params": t.params, "value": t.value,
           "intermediate": {str(k): v for k, v in t.intermediate_values.items()}}
          for t in study.trials]
client = MlflowClient(tracking_uri=f"file://{registry}/mlruns")
experiment = client.get_experiment_by_name(name)
runs = client.search_runs([experiment.experiment_id])
parent = [r for r in runs if r.data.tags.get("kiln.sweep.role") == "parent"]
children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
child_info = [{"trial": r.data.tags.get("kiln.sweep.trial"), "role": r.data.tags.get("kiln.sweep.role"),
               "lr": r.data.params.get("train.with.lr"),
               "val_epochs": [m.step for m in client.get_metric_history(r.info.run_id, "val/accuracy")]}
              for r in children]
print(json.dumps({"optuna": optuna.__version__, "direction": study.direction.name, "trials": trials,
                  "parents": len(parent), "children": child_info}))
)";

class SweepCli : public CliTest {
 protected:
  json read_back(const std::string& name = "tiny-sweep") {
    write_text(dir_ / "reader.py", kReader);
    const CommandResult result =
        run_command({KILN_PYTHON, (dir_ / "reader.py").string(), registry().string(), name},
                    {{"MLFLOW_ALLOW_FILE_STORE", "true"}});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result.exit_code == 0 ? json::parse(result.out) : json();
  }
  sweep::Study kiln_view(const std::string& name = "tiny-sweep") {
    return sweep::Journal(registry() / "sweeps" / name / "journal.log", "test-reader").load(name);
  }
};

TEST_F(SweepCli, GridWithAshaReadsTheSameInOptunaAndShowsAsMlflowChildRuns) {
  if (!fs::exists(KILN_PYTHON)) GTEST_FAIL() << KILN_PYTHON " is missing (tools/install-deps.sh)";
  write_text(dir_ / "p.yaml", sweep_pipeline(kGridSweep));
  const CommandResult run = kiln({"sweep", "p.yaml"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("sweep tiny-sweep: 4 trials"));

  const sweep::Study study = kiln_view();
  const json seen = read_back();
  ASSERT_EQ(seen["trials"].size(), study.trials.size());
  ASSERT_EQ(study.trials.size(), 4u);
  EXPECT_EQ(seen["direction"], "MAXIMIZE");
  std::set<std::pair<double, int>> points;
  int pruned = 0;
  for (const sweep::Trial& trial : study.trials) {
    const json& theirs = seen["trials"][static_cast<std::size_t>(trial.number)];
    EXPECT_EQ(theirs["state"], to_string(trial.state)) << trial.number;
    if (trial.value) {
      EXPECT_DOUBLE_EQ(theirs["value"].get<double>(), *trial.value);
    }
    ASSERT_EQ(theirs["intermediate"].size(), trial.intermediate.size()) << trial.number;
    for (const auto& [step, value] : trial.intermediate)
      EXPECT_DOUBLE_EQ(theirs["intermediate"][std::to_string(step)].get<double>(), value);
    const double lr = theirs["params"]["train.with.lr"];
    const int batch = theirs["params"]["train.with.batch_size"];
    EXPECT_DOUBLE_EQ(lr, sweep::to_external(trial.distributions.at("train.with.lr"),
                                            trial.params.at("train.with.lr"))
                             .get<double>());
    points.insert({lr, batch});
    pruned += trial.state == sweep::TrialState::Pruned;
    EXPECT_TRUE(trial.state == sweep::TrialState::Complete ||
                trial.state == sweep::TrialState::Pruned)
        << to_string(trial.state);
  }
  // The grid: exactly its product, each point once.
  EXPECT_EQ(points,
            (std::set<std::pair<double, int>>{{1e-5, 25}, {1e-5, 100}, {0.01, 25}, {0.01, 100}}));
  // The grid runs both lr 0.01 trials first (row-major), so each lr 1e-5 trial, which
  // learns nothing in an epoch, meets at least one of them at ASHA's epoch-1 rung
  // whatever the workers' timing, and is not the best there: it is stopped. (Whether
  // the second lr 0.01 trial is stopped depends on which of the two reports first.)
  EXPECT_GE(pruned, 2);
  for (const sweep::Trial& trial : study.trials) {
    const double lr = sweep::to_external(trial.distributions.at("train.with.lr"),
                                         trial.params.at("train.with.lr"))
                          .get<double>();
    if (lr < 1e-3) {
      EXPECT_EQ(trial.state, sweep::TrialState::Pruned) << trial.number;
    }
  }

  // MLflow: one parent; its children are the four trials, each with its lr and one
  // val/accuracy point per epoch it trained, and the winner's evaluation.
  EXPECT_EQ(seen["parents"], 1);
  int trial_children = 0, winners = 0;
  for (const json& child : seen["children"]) {
    if (child["role"] == "winner") {
      ++winners;
      continue;
    }
    ++trial_children;
    const auto& trial = study.trials.at(std::stoul(child["trial"].get<std::string>()));
    EXPECT_EQ(child["val_epochs"].size(), trial.intermediate.size());
    EXPECT_FALSE(child["lr"].is_null());
  }
  EXPECT_EQ(trial_children, 4);
  EXPECT_EQ(winners, 1);

  const json result = json::parse(read_text(registry() / "sweeps" / "tiny-sweep" / "result.json"));
  EXPECT_EQ(result["best_trial"], study.best_trial()->number);
  EXPECT_TRUE(result["winner_metrics"].contains("eval/accuracy")) << result.dump();
  EXPECT_FALSE(result["winner_retrained"].get<bool>());
  EXPECT_TRUE(fs::exists(registry() / "sweeps" / "tiny-sweep" / "report.html"));

  // Running it again continues the finished sweep: no trial runs again.
  const CommandResult again = kiln({"sweep", "p.yaml"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(kiln_view().trials.size(), 4u);
  const CommandResult status = kiln({"sweep", "status", "tiny-sweep"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("4 trials"));
}

// The pid of a child of `parent` whose command line holds `word`, or 0.
pid_t child_with(pid_t parent, const std::string& word) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string pid, comm, state;
    pid_t ppid = 0;
    stat >> pid >> comm >> state >> ppid;
    if (ppid != parent) continue;
    std::string cmdline = read_text(entry.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(word) != std::string::npos) return std::stoi(name);
  }
  return 0;
}

// A sweep of 3 random trials of 40 short epochs, one worker, started in the
// background; returns the parent's pid once trial 0 has reported its second epoch,
// with the worker's pid.
std::pair<pid_t, pid_t> start_long_sweep(const fs::path& dir, const fs::path& registry) {
  write_text(dir / "p.yaml", sweep_pipeline(R"(  space:
    train.with.lr: {loguniform: [0.001, 0.01]}
  objective: {metric: val/accuracy, direction: maximize}
  sampler: {type: random, seed: 3}
  trials: 3
  workers: 1
)",
                                            40));
  const std::string kiln_path = std::string(KILN_BINARY_DIR) + "/bin/kiln";
  const pid_t parent = ::fork();
  if (parent == 0) {
    ::setpgid(0, 0);  // for the tests' ChildGuard: the sweep and its workers
    ::setenv("KILN_REGISTRY", registry.c_str(), 1);
    ::setenv("KILN_PLAIN_PROGRESS", "1", 1);
    if (::chdir(dir.c_str()) != 0) std::_Exit(126);
    ::execl(kiln_path.c_str(), "kiln", "sweep", "p.yaml", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  const fs::path journal = registry / "sweeps" / "tiny-sweep" / "journal.log";
  for (int i = 0; i < 6000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!fs::exists(journal)) continue;
    const std::string text = read_text(journal);
    if (text.find("\"step\":2") == std::string::npos &&
        text.find("\"step\": 2") == std::string::npos)
      continue;
    if (const pid_t worker = child_with(parent, "--worker-id")) return {parent, worker};
  }
  return {parent, 0};
}

// Every sampled trial finished once: the interrupted one failed with `reason` and its
// re-queued copy completed.
void expect_each_trial_once(const sweep::Study& study, const std::string& reason) {
  int failed = 0, sampled = 0, complete = 0;
  std::set<int> finished_originals;
  for (const sweep::Trial& trial : study.trials) {
    const bool copy = trial.system_attrs.contains("kiln:requeued_from");
    sampled += !copy;
    if (trial.state == sweep::TrialState::Fail) {
      ++failed;
      EXPECT_THAT(trial.system_attrs.value("kiln:fail_reason", ""), HasSubstr(reason));
      continue;
    }
    ASSERT_EQ(trial.state, sweep::TrialState::Complete) << trial.number;
    ++complete;
    const int original = copy ? trial.system_attrs["kiln:requeued_from"].get<int>() : trial.number;
    EXPECT_TRUE(finished_originals.insert(original).second) << "trial " << original << " ran twice";
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(sampled, 3);
  EXPECT_EQ(complete, 3);
  EXPECT_EQ(study.trials.size(), 4u);
}

TEST_F(SweepCli, AWorkerKilledMidTrialLosesNothingAndRunsNothingTwice) {
  const auto [parent, worker] = start_long_sweep(dir_.path(), registry());
  const test::ChildGuard guard(parent);
  ASSERT_NE(worker, 0) << "the worker never reported its second epoch";
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(parent, &status, 0), parent);
  EXPECT_EQ(WEXITSTATUS(status), 3) << "the sweep must say a worker died";

  const CommandResult again = kiln({"sweep", "p.yaml"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  // The re-queued trial resumed from the killed trial's checkpoint.
  EXPECT_THAT(again.err + again.out, HasSubstr("resuming from the checkpoint"));
  expect_each_trial_once(kiln_view(), "ended while it ran");
}

TEST_F(SweepCli, CtrlCStopsTheWorkersWhichRequeueTheirTrials) {
  const auto [parent, worker] = start_long_sweep(dir_.path(), registry());
  const test::ChildGuard guard(parent);
  ASSERT_NE(worker, 0) << "the worker never reported its second epoch";
  ASSERT_EQ(::kill(parent, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(parent, &status, 0), parent);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_EQ(::kill(worker, 0), -1) << "the worker outlived the parent";

  const CommandResult again = kiln({"sweep", "p.yaml"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_THAT(again.err + again.out, HasSubstr("resuming from the checkpoint"));
  expect_each_trial_once(kiln_view(), "interrupted by a signal");
}

TEST_F(SweepCli, TpeWithOneWorkerRepeatsItsTrialsBySeed) {
  const auto sweep_with_seed = [&](int seed, const std::string& registry_name) {
    write_text(dir_ / "p.yaml", sweep_pipeline(R"(  space:
    train.with.lr: {loguniform: [0.0001, 0.03]}
    train.with.batch_size: {choice: [25, 50, 100]}
  objective: {metric: val/accuracy, direction: maximize}
  sampler: {type: tpe, seed: )" + std::to_string(seed) +
                                                   R"(}
  trials: 12
)",
                                               1));
    const CommandResult run = run_command(
        {std::string(KILN_BINARY_DIR) + "/bin/kiln", "sweep", "p.yaml"},
        {{"KILN_REGISTRY", (dir_ / registry_name).string()}, {"KILN_PLAIN_PROGRESS", "1"}},
        dir_.path());
    EXPECT_EQ(run.exit_code, 0) << run.err;
    std::vector<std::map<std::string, double>> params;
    for (const auto& trial :
         sweep::Journal(dir_ / registry_name / "sweeps" / "tiny-sweep" / "journal.log", "t")
             .load("tiny-sweep")
             .trials)
      params.push_back(trial.params);
    return params;
  };
  const auto first = sweep_with_seed(0, "a");
  const auto second = sweep_with_seed(0, "b");
  const auto other = sweep_with_seed(1, "c");
  ASSERT_EQ(first.size(), 12u);
  EXPECT_EQ(first, second);
  EXPECT_NE(first, other);
}

struct BadSweep {
  const char* name;
  const char* sweep;
  const char* expected;  // in the one error line
};

class SweepCliBadInput : public SweepCli, public ::testing::WithParamInterface<BadSweep> {};

TEST_P(SweepCliBadInput, OneLineExitTwoNothingWritten) {
  write_text(dir_ / "p.yaml", sweep_pipeline(GetParam().sweep));
  const CommandResult run = kiln({"sweep", "p.yaml"});
  EXPECT_EQ(run.exit_code, 2) << run.out << run.err;
  EXPECT_THAT(run.err, ::testing::MatchesRegex("kiln: [a-z ]+: p\\.yaml:[0-9]+:[0-9]+: .*\n"));
  EXPECT_THAT(run.err, HasSubstr(GetParam().expected));
  EXPECT_FALSE(fs::exists(registry())) << "the registry was written";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SweepCliBadInput,
    ::testing::Values(
        BadSweep{"UnknownParameter",
                 "  space: {train.with.lrate: {uniform: [0.1, 0.2]}}\n"
                 "  objective: {metric: val/accuracy, direction: maximize}\n  trials: 2\n",
                 "lrate"},
        BadSweep{"EmptyChoice",
                 "  space: {train.with.batch_size: {choice: []}}\n"
                 "  objective: {metric: val/accuracy, direction: maximize}\n  trials: 2\n",
                 "choice"},
        BadSweep{"LowNotBelowHigh",
                 "  space: {train.with.lr: {uniform: [0.2, 0.1]}}\n"
                 "  objective: {metric: val/accuracy, direction: maximize}\n  trials: 2\n",
                 "0.2"},
        BadSweep{"LogBoundNotPositive",
                 "  space: {train.with.lr: {loguniform: [0, 0.1]}}\n"
                 "  objective: {metric: val/accuracy, direction: maximize}\n  trials: 2\n",
                 "a log range needs low > 0"},
        BadSweep{"MetricNoStageLogs",
                 "  space: {train.with.lr: {uniform: [0.1, 0.2]}}\n"
                 "  objective: {metric: val/acuracy, direction: maximize}\n  trials: 2\n",
                 "did you mean 'val/accuracy'"},
        BadSweep{"DirectionTypo",
                 "  space: {train.with.lr: {uniform: [0.1, 0.2]}}\n"
                 "  objective: {metric: val/accuracy, direction: maximise}\n  trials: 2\n",
                 "did you mean 'maximize'"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace kiln::test
