// kiln submit --sweep on a real local Slurm: a job for the shared stages and the
// study, a job array of workers with a concurrency limit (%2) that take trials from
// the shared journal, and a job that evaluates the winner once they all ended. An
// array task cancelled in the middle of a trial re-queues it; another task runs it;
// no trial is lost or run twice.
#include <kiln/sweep/journal.h>

#include <set>

#include "slurm/slurm_support.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// 800 rows to train on, 200 to score each of 12 epochs; 8 random trials. Batches of
// one make a trial last seconds (at 25 a trial took 0.3 s on a quiet machine, and
// the cancel below could arrive after the trial it aimed at had finished).
const char* kSweepPipeline = R"(name: array-sweep
stages:
  train_data:
    uses: idx_import
    with: {images: train-images.idx, labels: train-labels.idx, name: array-train}
  test_data:
    uses: idx_import
    with: {images: test-images.idx, labels: test-labels.idx, name: array-test}
  split:
    uses: split
    needs: [train_data]
    with: {validation: 200, order: last}
  train:
    uses: train
    needs: [split]
    with:
      model: {layers: [flatten, {linear: {out: 32}}, relu, {linear: {out: classes}}]}
      epochs: 12
      batch_size: 1
      lr: 0.003
      threads: 1
  evaluate:
    uses: evaluate
    needs: [train, test_data]
    with: {gate: {accuracy: 0.1}}
  register:
    uses: register
    needs: [train, evaluate]
    with: {model_name: array-sweep-mlp}
sweep:
  space:
    train.with.lr: {loguniform: [0.0003, 0.01]}
  objective: {metric: val/accuracy, direction: maximize}
  sampler: {type: random, seed: 3}
  trials: 8
)";

sweep::Study study_of(const fs::path& registry) {
  return sweep::Journal(registry / "sweeps" / "array-sweep" / "journal.log", "test-reader")
      .load("array-sweep");
}

TEST_F(SlurmTest, SweepAsJobArrayFinishesEveryTrialOnceAfterATaskIsCancelled) {
  write_text(dir_ / "p.yaml", kSweepPipeline);
  const CommandResult submit =
      kiln_slurm({"submit", "p.yaml", "--sweep", "--array-tasks", "4", "--concurrent", "2"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  auto ids = submitted(submit);
  ASSERT_EQ(ids.size(), 3u) << submit.out;
  EXPECT_THAT(read_text(submission_dir() / "workers.sbatch"), HasSubstr("#SBATCH --array=0-3%2"));

  // A trial in the middle of its epochs: cancel the array task that runs it.
  std::string task;
  int cancelled_trial = -1;
  ASSERT_TRUE(wait_until(
      [&] {
        if (!fs::exists(registry() / "sweeps" / "array-sweep" / "journal.log")) return false;
        for (const sweep::Trial& trial : study_of(registry()).trials) {
          if (trial.state != sweep::TrialState::Running || trial.intermediate.size() < 2) continue;
          // Worker ids of array tasks: slurm-<array job>_<task>-r<restart>-<pid>.
          std::smatch match;
          const std::string worker = trial.system_attrs.value("kiln:worker", "");
          if (!std::regex_search(worker, match, std::regex(R"(slurm-(\d+_\d+))"))) continue;
          task = match[1];
          cancelled_trial = trial.number;
          return true;
        }
        return false;
      },
      240))
      << job_logs();
  const CommandResult cancel = slurm({"/usr/bin/scancel", task});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;

  EXPECT_EQ(wait_done(ids["finish"], 400), "COMPLETED") << job_logs();
  // 8 sampled trials and the copy of the cancelled one (docs/sweeps.md): the
  // original FAIL, its copy finished by another worker, every point finished once.
  const sweep::Study study = study_of(registry());
  ASSERT_EQ(study.trials.size(), 9u) << job_logs();
  std::set<double> finished_points;
  int finished = 0;
  for (const sweep::Trial& trial : study.trials) {
    if (trial.number == cancelled_trial) {
      EXPECT_EQ(trial.state, sweep::TrialState::Fail);
      continue;
    }
    EXPECT_TRUE(trial.state == sweep::TrialState::Complete ||
                trial.state == sweep::TrialState::Pruned)
        << "trial " << trial.number << ": " << to_string(trial.state);
    ++finished;
    finished_points.insert(trial.params.at("train.with.lr"));
    if (trial.system_attrs.contains("kiln:requeued_from")) {
      EXPECT_EQ(trial.system_attrs["kiln:requeued_from"].dump(), std::to_string(cancelled_trial));
      EXPECT_THAT(trial.system_attrs.value("kiln:worker", ""),
                  ::testing::Not(HasSubstr("slurm-" + task + "-")));
    }
  }
  EXPECT_EQ(finished, 8);
  EXPECT_EQ(finished_points.size(), 8u) << "a point ran twice";
  EXPECT_TRUE(fs::exists(registry() / "sweeps" / "array-sweep" / "result.json")) << job_logs();
  // Four array tasks ran, at most two at a time; the cancelled one shows as such.
  const std::string states = cluster_->state(ids["workers"]);
  EXPECT_EQ(std::count(states.begin(), states.end(), '\n'), 3) << states;
  EXPECT_THAT(states, HasSubstr("CANCELLED"));
}

}  // namespace
}  // namespace kiln::test
