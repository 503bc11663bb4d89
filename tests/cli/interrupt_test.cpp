// SIGINT during training: the stage stops at a step boundary, the run is marked
// KILLED, nothing of the stage is committed, and kiln exits 130.
#include <gmock/gmock.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "cli_fixture.h"
#include "support/child_guard.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

// Starts `kiln run p.yaml <override>` with stderr in err_file, in its own process
// group; returns its pid (hold a ChildGuard on it).
pid_t start_kiln(const fs::path& dir, const fs::path& registry, const fs::path& err_file,
                 const char* override) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    std::FILE* err = std::freopen(err_file.c_str(), "w", stderr);
    std::FILE* out = std::freopen("/dev/null", "w", stdout);
    if (err == nullptr || out == nullptr || ::chdir(dir.c_str()) != 0) ::_exit(126);
    ::setenv("KILN_REGISTRY", registry.c_str(), 1);
    ::setenv("KILN_PLAIN_PROGRESS", "1", 1);
    const std::string kiln = std::string(KILN_BINARY_DIR) + "/bin/kiln";
    ::execl(kiln.c_str(), kiln.c_str(), "run", "p.yaml", override, nullptr);
    ::_exit(127);
  }
  return pid;
}

// Polls until `ready()` or 60 s.
template <class Ready>
void wait_for(Ready&& ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!ready() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

bool has_checkpoint(const fs::path& registry) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(registry / "stages" / ".resume", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->path().filename() == "checkpoint.safetensors") return true;
  return false;
}

constexpr const char* kLongRun = "train.with.epochs=100000";

TEST_F(CliTest, SigintStopsTrainingMarksTheRunKilledAndExits130) {
  const fs::path err_file = dir_ / "stderr.txt";
  const pid_t pid = start_kiln(dir_.path(), registry(), err_file, kLongRun);
  const ChildGuard guard(pid);
  // Wait until the run is open (training has logged), then interrupt.
  wait_for([&] { return read_text(err_file).find("run ") != std::string::npos; });
  ASSERT_NE(read_text(err_file).find("stage train (train): running"), std::string::npos);
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const auto lines = lines_of(read_text(err_file));
  EXPECT_THAT(lines.back(),
              ::testing::StartsWith("kiln: interrupted: stage 'train' (train): stopped at step "));
  fs::path run_dir;
  for (const auto& entry : fs::directory_iterator(registry() / "mlruns" / "1"))
    if (entry.is_directory()) run_dir = entry.path();
  EXPECT_THAT(read_text(run_dir / "meta.yaml"), ::testing::HasSubstr("status: 5"));
  std::size_t committed = 0;
  for (const auto& entry : fs::directory_iterator(registry() / "stages"))
    committed += fs::exists(entry.path() / "manifest.json");
  EXPECT_EQ(committed, 2u);  // the two imports; not train
  EXPECT_TRUE(has_checkpoint(registry())) << "the stop wrote no checkpoint";
}

// kill -9 mid-training, then `kiln run` again: the stage resumes from its last
// checkpoint and the pipeline finishes.
TEST_F(CliTest, AfterKillMinus9TheNextRunResumesFromTheCheckpoint) {
  const fs::path err_file = dir_ / "stderr.txt";
  // 20 steps per epoch, a checkpoint every 10 steps; 30 epochs take a while.
  const char* run = "train.with.epochs=30";
  const pid_t pid = start_kiln(dir_.path(), registry(), err_file, run);
  const ChildGuard guard(pid);
  wait_for([&] { return has_checkpoint(registry()); });
  ASSERT_TRUE(has_checkpoint(registry()));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  const CommandResult resumed = kiln({"run", "p.yaml", run});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_THAT(resumed.err, ::testing::HasSubstr("train: resuming from the checkpoint at step "));
  EXPECT_THAT(resumed.out,
              ::testing::ContainsRegex("train +train +ran .* 600 steps \\(resumed at [0-9]+\\)"));
  EXPECT_FALSE(has_checkpoint(registry())) << "the resume directory outlived the commit";
}

}  // namespace
}  // namespace kiln::test
