// kiln submit --split-stages on a real local Slurm: the stages before training run
// as one job, training as a job that depends on it (afterok). Training starts only
// after the data job succeeded; when the data job fails, training never runs and
// kiln jobs says why.
#include "slurm/slurm_support.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string event_time(const std::vector<nlohmann::json>& events, const std::string& job,
                       const std::string& kind) {
  for (const auto& event : events)
    if (event.value("job_id", "") == job && event.value("event", "") == kind)
      return event.value("time", "");
  return "";
}

TEST_F(SlurmTest, ChainTrainsOnlyAfterTheDataJobSucceeded) {
  const CommandResult submit = kiln_slurm({"submit", "p.yaml", "--split-stages"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  auto ids = submitted(submit);
  ASSERT_EQ(ids.size(), 2u) << submit.out;
  EXPECT_THAT(read_text(submission_dir() / "train.sbatch"),
              HasSubstr("#SBATCH --dependency=afterok:" + ids["data"]));
  EXPECT_EQ(wait_done(ids["train"], 300), "COMPLETED") << job_logs();
  EXPECT_EQ(cluster_->state(ids["data"]), "COMPLETED");

  const auto recorded = events();
  const std::string data_end = event_time(recorded, ids["data"], "end");
  const std::string train_start = event_time(recorded, ids["train"], "start");
  ASSERT_FALSE(data_end.empty()) << job_logs();
  ASSERT_FALSE(train_start.empty()) << job_logs();
  EXPECT_LE(data_end, train_start);  // ISO 8601 UTC: text order is time order
  // The data job imported; training found the imports in the step cache.
  const std::string data_log = read_text(submission_dir() / ("slurm-" + ids["data"] + ".out"));
  const std::string train_log = read_text(submission_dir() / ("slurm-" + ids["train"] + ".out"));
  EXPECT_THAT(data_log, ::testing::ContainsRegex("train_data +idx_import +ran"));
  EXPECT_THAT(data_log, ::testing::Not(HasSubstr("evaluate")));
  EXPECT_THAT(train_log, ::testing::ContainsRegex("train_data +idx_import +cached"));
  EXPECT_THAT(train_log, ::testing::ContainsRegex("train +train +ran"));
}

TEST_F(SlurmTest, AFailedDataJobMeansTrainingNeverRuns) {
  // Images that are no IDX file: the import fails when the data job runs it.
  write_text(dir_ / "train-images.idx", "these bytes are no IDX file");
  const CommandResult submit = kiln_slurm({"submit", "p.yaml", "--split-stages"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  auto ids = submitted(submit);
  EXPECT_EQ(wait_done(ids["data"], 200).rfind("FAILED", 0), 0u) << job_logs();
  // kill-on-invalid-dep: Slurm cancels the training job instead of keeping it pending.
  EXPECT_TRUE(wait_until([&] { return cluster_->state(ids["train"]) == "CANCELLED"; }, 60))
      << cluster_->state(ids["train"]);
  for (const auto& event : events()) EXPECT_NE(event.value("job_id", ""), ids["train"]);
  EXPECT_FALSE(fs::exists(registry() / "mlruns") && !run_statuses(registry()).empty() &&
               run_statuses(registry()) != std::vector<int>{4})
      << "only the failed import's run may exist";

  const CommandResult jobs = kiln_slurm({"jobs"});
  EXPECT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_THAT(jobs.out, ::testing::ContainsRegex("NEVER RAN: its data job " + ids["data"] +
                                                 " failed \\(exit [0-9]+\\)"));
}

}  // namespace
}  // namespace kiln::test
