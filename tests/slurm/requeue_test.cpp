// Preemption and time limits on a real local Slurm. A 2-task training job is
// stopped mid-training in the two ways a cluster stops one: Slurm's warning signal
// to the batch step (`scancel --signal=USR1 --batch`, what --signal=B:USR1@T sends
// before the time limit), after which kiln checkpoints and requeues the job itself;
// and `scontrol requeue` (how PreemptMode=REQUEUE ends a job: SIGTERM to every
// task, SIGKILL after KillWait). Either way the job starts again, resumes from the
// checkpoint, finishes with the weights of an uninterrupted run, bit for bit, in
// one tracking run with restart count 1 and one registered model version.
#include "slurm/slurm_support.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

// 1000 rows in global batches of 50: 20 steps an epoch, a checkpoint every 10.
const std::vector<std::string> kLongRun = {"p.yaml", "train.with.epochs=40",
                                           "train.with.checkpoint_every=10"};

std::vector<fs::path> model_versions(const fs::path& registry) {
  std::vector<fs::path> versions;
  std::error_code ec;
  for (const auto& model : fs::directory_iterator(registry / "mlruns" / "models", ec))
    for (const auto& entry : fs::directory_iterator(model.path(), ec))
      if (entry.path().filename().string().rfind("version-", 0) == 0)
        versions.push_back(entry.path());
  return versions;
}

class RequeueTest : public SlurmTest {
 protected:
  // The model two ranks train without interruption (kiln's own launcher).
  fs::path reference_model() {
    std::vector<std::string> args = {std::string(KILN_BINARY_DIR) + "/bin/kiln", "run", "--nproc",
                                     "2"};
    args.insert(args.end(), kLongRun.begin(), kLongRun.end());
    const CommandResult result = run_command(
        args, {{"KILN_REGISTRY", (dir_ / "reference").string()}, {"KILN_PLAIN_PROGRESS", "1"}},
        dir_.path());
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return trained_model(dir_ / "reference");
  }

  std::string submit_long_job(const std::vector<std::string>& more = {}) {
    std::vector<std::string> args = {"submit", "--ntasks-per-node", "2", "--cpus-per-task", "1"};
    args.insert(args.end(), more.begin(), more.end());
    args.insert(args.end(), kLongRun.begin(), kLongRun.end());
    const CommandResult submit = kiln_slurm(args);
    EXPECT_EQ(submit.exit_code, 0) << submit.err;
    const std::string job = submitted(submit)["run"];
    // The first checkpoint (step 10): training is under way, with something to resume.
    EXPECT_TRUE(wait_until([&] { return checkpoint_file(registry()).has_value(); }, 120))
        << job_logs();
    return job;
  }

  void expect_resumed_bit_exact(const std::string& job) {
    EXPECT_EQ(wait_done(job, 400), "COMPLETED") << job_logs();
    const std::string log = read_text(submission_dir() / ("slurm-" + job + ".out"));
    EXPECT_THAT(log, ::testing::HasSubstr("resuming from the checkpoint at step")) << log;
    EXPECT_EQ(max_weight_difference(trained_model(registry()), reference_model()), 0.0);
    EXPECT_EQ(run_statuses(registry()), std::vector<int>{3}) << "one run, FINISHED";
    EXPECT_EQ(model_versions(registry()).size(), 1u);
    std::string restart_tag;
    for (const auto& run : fs::recursive_directory_iterator(registry() / "mlruns"))
      if (run.path().filename() == "kiln.slurm.restart_count") restart_tag = read_text(run.path());
    EXPECT_EQ(restart_tag, "1");
    EXPECT_THAT(slurm({"/usr/bin/scontrol", "show", "job", job}).out,
                ::testing::HasSubstr("Restarts=1"));
  }
};

TEST_F(RequeueTest, WarningSignalCheckpointsRequeuesAndResumesBitExact) {
  const std::string job = submit_long_job();
  const CommandResult signal = slurm({"/usr/bin/scancel", "--signal=USR1", "--batch", job});
  ASSERT_EQ(signal.exit_code, 0) << signal.err;
  expect_resumed_bit_exact(job);
  // kiln asked for the requeue: its events say so, then the second attempt ended well.
  std::vector<std::string> kinds;
  for (const auto& event : events())
    kinds.push_back(event["event"].get<std::string>() + "/" +
                    std::to_string(event.value("restart", -1)));
  EXPECT_THAT(kinds, ::testing::ElementsAre("start/0", "requeue/0", "start/1", "end/1"));
}

TEST_F(RequeueTest, ScontrolRequeueOfTheRunningJobResumesFromTheLastCheckpoint) {
  const std::string job = submit_long_job();
  const CommandResult requeue = slurm({"/usr/bin/scontrol", "requeue", job});
  ASSERT_EQ(requeue.exit_code, 0) << requeue.err;
  expect_resumed_bit_exact(job);
}

TEST_F(RequeueTest, RequeuesAreCapped) {
  // --max-requeues 0: the warning still checkpoints, and the job ends there (exit 130).
  const std::string job = submit_long_job({"--max-requeues", "0"});
  ASSERT_EQ(slurm({"/usr/bin/scancel", "--signal=USR1", "--batch", job}).exit_code, 0);
  EXPECT_EQ(wait_done(job, 200), "FAILED") << job_logs();
  EXPECT_TRUE(checkpoint_file(registry()).has_value()) << "the checkpoint stays for a new submit";
  const auto recorded = events();
  ASSERT_EQ(recorded.size(), 2u) << job_logs();
  EXPECT_EQ(recorded[1]["exit_code"], 130);
  EXPECT_EQ(recorded[1]["requeue_limit"], 0);
  EXPECT_THAT(read_text(submission_dir() / ("slurm-" + job + ".out")),
              ::testing::HasSubstr("the cap (KILN_MAX_REQUEUES)"));
  EXPECT_EQ(run_statuses(registry()), std::vector<int>{5});  // KILLED
}

TEST_F(RequeueTest, AFailedStageIsNotRequeued) {
  // A model that learns nothing fails the gate (accuracy 0.5): exit 4, once.
  const CommandResult submit = kiln_slurm({"submit", "p.yaml", "train.with.lr=1e-12"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  const std::string job = submitted(submit)["run"];
  EXPECT_EQ(wait_done(job, 200), "FAILED") << job_logs();
  EXPECT_THAT(slurm({"/usr/bin/scontrol", "show", "job", job}).out,
              ::testing::HasSubstr("Restarts=0"));
  const auto recorded = events();
  ASSERT_EQ(recorded.size(), 2u) << job_logs();
  EXPECT_EQ(recorded[1]["event"], "end");
  EXPECT_EQ(recorded[1]["exit_code"], 4) << job_logs();
  EXPECT_THAT(kiln_slurm({"jobs", "show", job}).out, ::testing::HasSubstr("FAILED (exit 4)"));
}

}  // namespace
}  // namespace kiln::test
