// kiln on cores that other processes keep busy: `kiln run` measures the load when it
// starts and, past half a core, runs itself again with OMP_WAIT_POLICY=PASSIVE, so
// that its OpenMP threads stop spinning against the other processes, and with the
// busy cores left out of its default thread count (tools/kiln/wait_policy.h); the
// train stage's first line says so. A wait policy the user set is left alone.
#include <kiln/cpu_threads.h>

#include <gmock/gmock.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cli/cli_fixture.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class SharedNodeTest : public CliTest {
 protected:
  // One busy loop per core of this process, as forked children.
  void SetUp() override {
    CliTest::SetUp();
    for (std::size_t i = 0; i < affinity_cpus().size(); ++i) {
      const pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        std::atomic<unsigned long> spin{0};
        for (;;) spin.fetch_add(1, std::memory_order_relaxed);
      }
      hogs_.push_back(pid);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  void TearDown() override {
    for (pid_t pid : hogs_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  std::vector<pid_t> hogs_;
};

// With every core kept busy, training also runs on one thread: more would wait
// for cores that the busy loops hold.
TEST_F(SharedNodeTest, BusyCoresMakeTrainingWaitPassivelyOnOneThread) {
  const CommandResult result = kiln({"run", "p.yaml", "--only", "train", "train.with.epochs=1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.err, HasSubstr(", 1 thread waiting passively (other processes kept"))
      << result.err;
}

TEST_F(SharedNodeTest, AWaitPolicyTheUserSetIsLeftAlone) {
  const CommandResult result = kiln({"run", "p.yaml", "--only", "train", "train.with.epochs=1"},
                                    {{"OMP_WAIT_POLICY", "active"}});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.err, Not(HasSubstr("waiting passively"))) << result.err;
}

}  // namespace
}  // namespace kiln::test
