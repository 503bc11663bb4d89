// SIGINT during training: the stage stops at a step boundary, the run is marked
// KILLED, nothing of the stage is committed, and kiln exits 130.
#include <gmock/gmock.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "cli_fixture.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

TEST_F(CliTest, SigintStopsTrainingMarksTheRunKilledAndExits130) {
  const fs::path err_file = dir_ / "stderr.txt";
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* err = std::freopen(err_file.c_str(), "w", stderr);
    std::FILE* out = std::freopen("/dev/null", "w", stdout);
    if (err == nullptr || out == nullptr || ::chdir(dir_.path().c_str()) != 0) ::_exit(126);
    ::setenv("KILN_REGISTRY", registry().c_str(), 1);
    ::setenv("KILN_PLAIN_PROGRESS", "1", 1);
    const std::string kiln = std::string(KILN_BINARY_DIR) + "/bin/kiln";
    ::execl(kiln.c_str(), kiln.c_str(), "run", "p.yaml", "train.with.epochs=100000", nullptr);
    ::_exit(127);
  }
  // Wait until the run is open (training has logged), then interrupt.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (read_text(err_file).find("run ") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_NE(read_text(err_file).find("stage train (train): running"), std::string::npos);
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const auto lines = lines_of(read_text(err_file));
  EXPECT_THAT(lines.back(),
              ::testing::StartsWith("kiln: interrupted: stage 'train' (train): stopped in epoch "));
  fs::path run_dir;
  for (const auto& entry : fs::directory_iterator(registry() / "mlruns" / "1"))
    if (entry.is_directory()) run_dir = entry.path();
  EXPECT_THAT(read_text(run_dir / "meta.yaml"), ::testing::HasSubstr("status: 5"));
  std::size_t committed = 0;
  for (const auto& entry : fs::directory_iterator(registry() / "stages"))
    committed += fs::exists(entry.path() / "manifest.json");
  EXPECT_EQ(committed, 2u);  // the two imports; not train
}

}  // namespace
}  // namespace kiln::test
