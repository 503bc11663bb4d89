// kiln submit --every on a real local Slurm: each occurrence submits the next one
// (--begin, --dependency=singleton under one job name) however it ends. The second
// occurrence, a minute after the first, finds every stage cached; new bytes at the
// import path make the next one retrain; kiln jobs cancel ends the schedule.
#include "slurm/slurm_support.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The job id of the occurrence submitted after `job`, once recorded.
std::string next_after(const std::vector<nlohmann::json>& events, const std::string& job) {
  for (const auto& event : events)
    if (event.value("event", "") == "next" && event.value("job_id", "") == job)
      return event.value("next_job_id", "");
  return "";
}

TEST_F(SlurmTest, ScheduleRunsAgainCachedThenRetrainsOnNewDataUntilCancelled) {
  const CommandResult submit = kiln_slurm({"submit", "p.yaml", "--every", "1min"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  const std::string first = submitted(submit)["run"];
  EXPECT_THAT(read_text(submission_dir() / "run.sbatch"),
              HasSubstr("#SBATCH --dependency=singleton"));

  EXPECT_EQ(wait_done(first, 200), "COMPLETED") << job_logs();
  std::string second;
  ASSERT_TRUE(wait_until([&] { return !(second = next_after(events(), first)).empty(); }, 30))
      << job_logs();
  EXPECT_THAT(kiln_slurm({"jobs"}).out, HasSubstr("latest occurrence job " + second));
  // The second occurrence starts at its --begin, a minute after the first began.
  EXPECT_EQ(wait_done(second, 200), "COMPLETED") << job_logs();
  EXPECT_THAT(read_text(submission_dir() / ("slurm-" + second + ".out")),
              HasSubstr("nothing ran: every stage was cached"));

  // New training data at the same path. The third occurrence is pulled forward to
  // now (scontrol update) to spare the suite a minute of waiting.
  write_synthetic_idx(dir_.path(), "train", 1000, 7);
  std::string third;
  ASSERT_TRUE(wait_until([&] { return !(third = next_after(events(), second)).empty(); }, 30));
  EXPECT_EQ(cluster_->state(third), "PENDING");
  slurm({"/usr/bin/scontrol", "update", "JobId=" + third, "StartTime=now"});
  EXPECT_EQ(wait_done(third, 200), "COMPLETED") << job_logs();
  const std::string third_log = read_text(submission_dir() / ("slurm-" + third + ".out"));
  EXPECT_THAT(third_log, ::testing::ContainsRegex("train_data +idx_import +ran"));
  EXPECT_THAT(third_log, ::testing::ContainsRegex("train +train +ran"));
  EXPECT_EQ(run_statuses(registry()), (std::vector<int>{3, 3}));  // the first and the third

  // Cancelling ends the schedule: the pending fourth is cancelled, no fifth comes.
  std::string fourth;
  ASSERT_TRUE(wait_until([&] { return !(fourth = next_after(events(), third)).empty(); }, 30));
  const CommandResult cancel = kiln_slurm({"jobs", "cancel", first});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_THAT(cancel.out, HasSubstr(fourth));
  EXPECT_EQ(cluster_->state(fourth), "CANCELLED");
  EXPECT_TRUE(fs::exists(submission_dir() / "cancelled"));
  EXPECT_THAT(kiln_slurm({"jobs"}).out, HasSubstr("cancelled"));
}

}  // namespace
}  // namespace kiln::test
