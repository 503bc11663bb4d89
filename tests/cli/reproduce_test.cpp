// kiln reproduce: a recorded run runs again in a scratch registry from what it
// recorded (pipeline, dataset versions, thread count) and its weights and metrics
// come out bit-identical on the same build; a change the recorded run did not
// have (here: another learning rate written into its pipeline) is reported, exit
// 4; a run whose dataset version was deleted cannot be reproduced, exit 3, and the
// registry is left as it was.
#include <gmock/gmock.h>
#include <signal.h>
#include <sys/wait.h>

#include "registry_cli_support.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;

class ReproduceTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    const CommandResult result = kiln({"run", "p.yaml", "train.with.threads=0"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto runs = pipeline_runs(registry());
    ASSERT_EQ(runs.size(), 1u);
    run_ = runs.front().run_id;
  }
  std::filesystem::path run_dir() const {
    return registry::MlflowStore(registry()).open_run(run_)->directory();
  }
  std::string run_;
};

TEST_F(ReproduceTest, SameBuildIsBitIdentical) {
  const CommandResult result = kiln({"reproduce", run_}, {{"KILN_NUM_THREADS", "1"}});
  ASSERT_EQ(result.exit_code, 0) << result.err << result.out;
  EXPECT_THAT(result.out, HasSubstr("bit-identical expected"));
  EXPECT_THAT(result.out, HasSubstr("stage train: weights bit-identical (4 tensors)"));
  EXPECT_THAT(result.out, HasSubstr("metric train/loss: bit-identical"));
  EXPECT_THAT(result.out, HasSubstr("metric eval/accuracy: bit-identical"));
  EXPECT_THAT(result.out, HasSubstr("timing metrics, not compared: "));
  EXPECT_THAT(result.out, HasSubstr("result: bit-identical"));
  // The recorded thread count (this machine's cores, as threads: 0 said) is used,
  // not the caller's KILN_NUM_THREADS.
  const auto tags = registry::MlflowStore(registry()).open_run(run_)->tags();
  EXPECT_THAT(result.err, HasSubstr("(" + tags.at("kiln.threads.train") + " threads)"))
      << result.err;
}

TEST_F(ReproduceTest, AChangedRunIsNotReproduced) {
  const std::filesystem::path pipeline = run_dir() / "artifacts" / "pipeline.yaml";
  std::string text = read_text(pipeline);
  const auto at = text.find("lr: 0.003");
  ASSERT_NE(at, std::string::npos) << text;
  write_text(pipeline, text.replace(at, 9, "lr: 0.0005"));
  const std::filesystem::path scratch = dir_ / "scratch";
  const CommandResult result = kiln({"reproduce", run_, "--scratch", scratch.string()});
  EXPECT_EQ(result.exit_code, 4) << result.err << result.out;
  EXPECT_THAT(result.out, HasSubstr("stage train: cache key"));
  EXPECT_THAT(result.out, HasSubstr("stage train: weights differ"));
  EXPECT_THAT(result.out, HasSubstr("result: NOT reproduced"));
  EXPECT_TRUE(std::filesystem::exists(scratch / "registry")) << "a failed reproduction keeps it";
}

// Ctrl-C reaches `kiln reproduce` alone (the re-run has a process group of its
// own); it passes the signal on, so the re-run stops as `kiln run` does (its run
// KILLED) and reproduce exits 130.
TEST_F(ReproduceTest, AnInterruptStopsTheReRunToo) {
  const std::filesystem::path pipeline = run_dir() / "artifacts" / "pipeline.yaml";
  std::string text = read_text(pipeline);
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"epochs: 3", "epochs: 400"},
                                 {"batch_size: 50", "batch_size: 20"}}) {
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  }
  write_text(pipeline, text);
  const std::filesystem::path scratch = dir_ / "scratch", err = dir_ / "err.txt";
  const pid_t pid =
      spawn_kiln({"reproduce", run_, "--scratch", scratch.string()}, dir_.path(), registry(), err);
  ChildGuard guard(pid);
  ASSERT_TRUE(wait_for([&] { return read_text(err).find("train  epoch") != std::string::npos; }))
      << read_text(err);
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << read_text(err);
  EXPECT_EQ(WEXITSTATUS(status), 130) << read_text(err);
  const auto runs = pipeline_runs(scratch / "registry");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs.front().status, registry::RunStatus::Killed) << read_text(err);
}

TEST_F(ReproduceTest, ADeletedDatasetVersionIsADataError) {
  const auto tags = registry::MlflowStore(registry()).open_run(run_)->tags();
  const std::string id = tags.at("kiln.dataset.train_data");
  std::filesystem::remove(registry() / "datasets" / (id + ".h5"));
  const auto before = snapshot(registry());
  const CommandResult result = kiln({"reproduce", run_});
  EXPECT_EQ(result.exit_code, 3) << result.err;
  const auto lines = lines_of(result.err);
  ASSERT_EQ(lines.size(), 1u) << result.err;
  EXPECT_THAT(lines[0], HasSubstr("stage 'train_data' produced dataset version " + id +
                                  ", which is no longer in registry"));
  EXPECT_EQ(snapshot(registry()), before);
}

TEST_F(ReproduceTest, AnUnknownRunIsAUsageError) {
  const CommandResult result = kiln({"reproduce", "0123456789abcdef"});
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_THAT(result.err, HasSubstr("no run '0123456789abcdef' in registry"));
}

}  // namespace
}  // namespace kiln::test
