// kiln submit against a real local Slurm: a 2-task job trains and leaves one
// FINISHED run with both ranks' metrics and its sbatch script; --dry-run submits
// nothing; bad input fails before (or, for what only Slurm knows, at) submission
// with one line and no record of a run.
#include "slurm/slurm_support.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

// The run directories of the registry's tracking runs (mlruns/<experiment>/<run>).
std::vector<fs::path> run_dirs(const fs::path& registry) {
  std::vector<fs::path> runs;
  std::error_code ec;
  for (const auto& experiment : fs::directory_iterator(registry / "mlruns", ec))
    for (const auto& run : fs::directory_iterator(experiment.path(), ec))
      if (fs::exists(run.path() / "meta.yaml") && fs::exists(run.path() / "metrics"))
        runs.push_back(run.path());
  return runs;
}

TEST_F(SlurmTest, TwoTaskJobTrainsAndKeepsItsScriptWithTheRun) {
  const bool fmnist = fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
  // Fashion-MNIST's MLP when the dataset is installed (the install step does it),
  // one epoch of it; else the synthetic pipeline.
  std::vector<std::string> args = {"submit", "--ntasks-per-node", "2", "--cpus-per-task", "1"};
  if (fmnist)
    args.insert(args.end(), {std::string(KILN_SOURCE_DIR) + "/configs/fmnist_mlp.yaml",
                             "train.with.epochs=1", "evaluate.with.gate={accuracy: 0.7}"});
  else
    args.insert(args.end(), {"p.yaml"});
  const CommandResult submit = kiln_slurm(args);
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  const std::string job = submitted(submit)["run"];
  ASSERT_FALSE(job.empty()) << submit.out;
  EXPECT_EQ(wait_done(job, 540), "COMPLETED") << job_logs();

  const std::vector<fs::path> runs = run_dirs(registry());
  ASSERT_EQ(runs.size(), 1u) << job_logs();
  EXPECT_EQ(run_statuses(registry()), std::vector<int>{3});  // FINISHED
  const fs::path run = runs.front();
  EXPECT_TRUE(fs::exists(run / "metrics/train/rank0/samples_per_s"));
  EXPECT_TRUE(fs::exists(run / "metrics/train/rank1/samples_per_s"));
  EXPECT_TRUE(fs::exists(run / "metrics/train/loss"));
  EXPECT_EQ(read_text(run / "tags/kiln.slurm.SLURM_JOB_ID"), job);
  EXPECT_EQ(read_text(run / "tags/kiln.slurm.restart_count"), "0");
  const std::string script = read_text(run / "artifacts/slurm/run.sbatch");
  EXPECT_THAT(script, ::testing::HasSubstr("#SBATCH --ntasks-per-node=2"));
  EXPECT_THAT(script, ::testing::HasSubstr("srun --kill-on-bad-exit=1"));
  EXPECT_EQ(script, read_text(submission_dir() / "run.sbatch"));

  const CommandResult jobs = kiln_slurm({"jobs"});
  EXPECT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_THAT(jobs.out, ::testing::HasSubstr(job + " "));
  EXPECT_THAT(jobs.out, ::testing::HasSubstr("COMPLETED"));
  const CommandResult show = kiln_slurm({"jobs", "show", job});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, ::testing::HasSubstr(
                            "log: " + (submission_dir() / ("slurm-" + job + ".out")).string()));
  EXPECT_THAT(read_text(submission_dir() / ("slurm-" + job + ".out")),
              ::testing::HasSubstr("finished"));
}

// A TCP rendezvous needs the job's secret; nobody exported one, so kiln jobs step
// made one for the attempt, and the script kept none.
TEST_F(SlurmTest, TcpRendezvousJobGetsASecretThatNoFileHolds) {
  std::map<std::string, std::string> environment = env();
  environment["KILN_RDZV"] = "tcp:127.0.0.1:" + std::to_string(free_port());
  const CommandResult submit =
      run_command({std::string(KILN_BINARY_DIR) + "/bin/kiln", "submit", "--ntasks-per-node", "2",
                   "--cpus-per-task", "1", "p.yaml"},
                  environment, dir_.path());
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  const std::string job = submitted(submit)["run"];
  ASSERT_FALSE(job.empty()) << submit.out;
  EXPECT_EQ(wait_done(job, 300), "COMPLETED") << job_logs();
  EXPECT_EQ(run_statuses(registry()), std::vector<int>{3});  // FINISHED
  EXPECT_THAT(job_logs(), ::testing::HasSubstr("rendezvous tcp:127.0.0.1:"));
  EXPECT_THAT(read_text(submission_dir() / "run.sbatch"),
              ::testing::Not(::testing::HasSubstr("KILN_RDZV_SECRET")));
}

TEST_F(SlurmTest, DryRunPrintsTheScriptAndSubmitsNothing) {
  const CommandResult result =
      kiln_slurm({"submit", "p.yaml", "train.with.epochs=2", "--nodes", "2", "--gpus-per-node", "4",
                  "--time", "1-02:00:00", "--partition", "gpu", "--account", "ml",
                  "--sbatch-arg=--exclusive", "--dry-run"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (const char* line :
       {"#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
        "#SBATCH --time=1-02:00:00", "#SBATCH --partition=gpu", "#SBATCH --account=ml",
        "#SBATCH --exclusive", "#SBATCH --requeue", "#SBATCH --open-mode=append",
        "#SBATCH --signal=B:USR1@120", "srun --kill-on-bad-exit=1", "train.with.epochs=2"})
    EXPECT_THAT(result.out, ::testing::HasSubstr(line));
  EXPECT_FALSE(fs::exists(registry() / "jobs"));
  EXPECT_EQ(slurm({"/usr/bin/squeue", "--noheader"}).out, "");
}

TEST_F(SlurmTest, BadResourcesFailBeforeAnythingIsSubmitted) {
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--nodes", "0"},
                                              {"--time", "1:2:3:4"},
                                              {"--time", "soon"},
                                              {"--ntasks-per-node", "2", "--gpus-per-node", "2"},
                                              {"--every", "0min"}}) {
    std::vector<std::string> args = {"submit", "p.yaml"};
    args.insert(args.end(), bad.begin(), bad.end());
    const CommandResult result = kiln_slurm(args);
    EXPECT_EQ(result.exit_code, 2) << bad[0] << " " << bad[1] << ": " << result.err;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_THAT(result.err, ::testing::HasSubstr(bad[0])) << result.err;
  }
  EXPECT_FALSE(fs::exists(registry() / "jobs"));
  EXPECT_EQ(slurm({"/usr/bin/squeue", "--noheader"}).out, "");
}

TEST_F(SlurmTest, UnknownPartitionGivesSlurmsReasonAndLeavesNoRecord) {
  const CommandResult result = kiln_slurm({"submit", "p.yaml", "--partition", "nosuch"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_THAT(result.err, ::testing::HasSubstr("Invalid partition name specified"));
  EXPECT_TRUE(fs::is_empty(registry() / "jobs")) << "a record of a job that never existed";
  EXPECT_TRUE(run_dirs(registry()).empty());
  EXPECT_EQ(kiln_slurm({"jobs"}).out.find("nosuch"), std::string::npos);
}

}  // namespace
}  // namespace kiln::test
