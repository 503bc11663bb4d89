// Gloo collectives across forked processes over the file and the TCP rendezvous,
// and the watchdog: a rank that dies or stalls makes the others fail within the
// timeout with a message naming it.
#include <kiln/device.h>
#include <kiln/dist/process_group.h>
#include <kiln/error.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <thread>

#include "dist/free_port.h"
#include "support/support.h"

namespace kiln::dist {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct RankResult {
  int exit_code = -1;
  std::string message;  // what the rank wrote (its error, or "ok")
  double seconds = 0;   // from the start to the rank's exit
};

using test::free_port;

// Runs body(group) on `n` forked ranks joined through `rendezvous`. A rank's exit
// code is 0 when body returns, 3 on an exception (its message kept).
std::vector<RankResult> run_ranks(int n, const std::string& rendezvous,
                                  const std::function<void(ProcessGroup&)>& body,
                                  GroupOptions options = {}) {
  test::TempDir messages;
  std::vector<pid_t> pids;
  const auto start = Clock::now();
  for (int rank = 0; rank < n; ++rank) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      int code = 0;
      std::string message = "ok";
      try {
        DistEnv env;
        env.launcher = "test";
        env.rank = rank;
        env.world_size = n;
        options.hostname = "127.0.0.1";
        options.rdzv_secret = "collectives-test-secret";
        auto group = init_process_group(env, rendezvous, options);
        body(*group);
        group->shutdown();
      } catch (const std::exception& error) {
        code = 3;
        message = error.what();
      }
      test::write_text(messages / std::to_string(rank), message);
      ::_exit(code);
    }
    pids.push_back(pid);
  }
  std::vector<RankResult> results(static_cast<std::size_t>(n));
  for (std::size_t exited = 0; exited < pids.size(); ++exited) {
    int status = 0;
    const pid_t pid = ::wait(&status);
    for (std::size_t r = 0; r < pids.size(); ++r) {
      if (pids[r] != pid) continue;
      results[r].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      results[r].seconds = std::chrono::duration<double>(Clock::now() - start).count();
      std::error_code ec;
      if (std::filesystem::exists(messages / std::to_string(r), ec))
        results[r].message = test::read_text(messages / std::to_string(r));
    }
  }
  return results;
}

// Throws unless `value` holds on this rank (the child's exception fails the test).
void expect(bool value, const std::string& what) {
  if (!value) throw InternalError("check failed: " + what);
}

void exercise_collectives(ProcessGroup& group) {
  const int rank = group.rank(), size = group.size();
  // Sizes around Gloo's segment boundaries, and zero.
  for (const std::size_t count :
       {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{300000}}) {
    std::vector<float> data(count);
    for (std::size_t i = 0; i < count; ++i) data[i] = static_cast<float>(rank + 1) * (i % 7);
    group.all_reduce(std::span<float>(data), ReduceOp::Sum);
    const float ranks_sum = static_cast<float>(size * (size + 1) / 2);
    for (std::size_t i = 0; i < count; ++i)
      expect(data[i] == ranks_sum * static_cast<float>(i % 7), "all_reduce sum");
  }
  Tensor t = Tensor::full({3, 5}, static_cast<float>(rank));
  group.all_reduce(t, ReduceOp::Avg);
  for (const float v : t.to_vector())
    expect(std::abs(v - (size - 1) / 2.0f) < 1e-6f, "all_reduce avg");
  Tensor b = Tensor::full({1000}, rank == 1 ? 42.0f : -1.0f);
  group.broadcast(b, 1);
  for (const float v : b.to_vector()) expect(v == 42.0f, "broadcast from rank 1");
  group.barrier();
  const auto gathered =
      group.all_gather(std::string(static_cast<std::size_t>(rank), 'x') + std::to_string(rank));
  expect(static_cast<int>(gathered.size()) == size, "all_gather size");
  for (int r = 0; r < size; ++r)
    expect(gathered[static_cast<std::size_t>(r)] ==
               std::string(static_cast<std::size_t>(r), 'x') + std::to_string(r),
           "all_gather contents");
  expect(group.sequence() == 8, "sequence numbers count collectives");
}

class Collectives : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(Collectives, GiveTheSameResultsOnEveryRank) {
  const auto [n, kind] = GetParam();
  test::TempDir dir;
  const std::string rendezvous = kind == "file" ? "file:" + (dir / "rdzv").string()
                                                : "tcp:127.0.0.1:" + std::to_string(free_port());
  const auto results = run_ranks(n, rendezvous, exercise_collectives);
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(results[static_cast<std::size_t>(r)].exit_code, 0) << "rank " << r;
    EXPECT_EQ(results[static_cast<std::size_t>(r)].message, "ok") << "rank " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Ranks, Collectives,
                         ::testing::Combine(::testing::Values(2, 3, 4),
                                            ::testing::Values("file", "tcp")));

TEST(Watchdog, DeadRankIsNamedBySurvivorsWithinTheTimeout) {
  test::TempDir dir;
  GroupOptions options;
  options.timeout = 10s;
  const auto results = run_ranks(
      3, "file:" + (dir / "rdzv").string(),
      [](ProcessGroup& group) {
        std::vector<float> data(1000, 1.0f);
        for (int i = 0; i < 1000000; ++i) {
          if (group.rank() == 1 && i == 60) ::kill(::getpid(), SIGKILL);
          group.all_reduce(std::span<float>(data));
          std::this_thread::sleep_for(20ms);
        }
      },
      options);
  EXPECT_EQ(results[1].exit_code, 128 + SIGKILL);
  for (const std::size_t r : {0u, 2u}) {
    EXPECT_EQ(results[r].exit_code, 3) << results[r].message;
    EXPECT_THAT(results[r].message, ::testing::HasSubstr("rank 1 did not arrive"));
    EXPECT_THAT(results[r].message, ::testing::HasSubstr("presumed dead"));
    EXPECT_THAT(results[r].message, ::testing::ContainsRegex("all_reduce of 4000 bytes #6[0-9]"));
    EXPECT_LT(results[r].seconds, 10.0) << "survivors must fail within the 10 s timeout";
  }
}

TEST(Watchdog, StalledRankTripsTheTimeoutOnEveryRank) {
  test::TempDir dir;
  GroupOptions options;
  options.timeout = 3s;
  ::setenv("KILN_DIST_TEST_STALL", "2:5", 1);
  const auto results = run_ranks(
      3, "tcp:127.0.0.1:" + std::to_string(free_port()),
      [](ProcessGroup& group) {
        std::vector<float> data(10, 1.0f);
        for (int i = 0; i < 10; ++i) group.all_reduce(std::span<float>(data));
      },
      options);
  ::unsetenv("KILN_DIST_TEST_STALL");
  for (const std::size_t r : {0u, 1u}) {
    EXPECT_EQ(results[r].exit_code, 3);
    EXPECT_THAT(results[r].message, ::testing::HasSubstr("all_reduce of 40 bytes #5 failed"));
    EXPECT_THAT(results[r].message,
                ::testing::HasSubstr("rank 2 is alive but did not arrive (last entered #4)"));
    // Gloo's timeout (3 s) plus the diagnosis (2.5 heartbeats), not much more.
    EXPECT_GT(results[r].seconds, 3.0);
    EXPECT_LT(results[r].seconds, 8.0);
  }
  // The stalled rank stops too, as soon as it sees the others abort.
  EXPECT_EQ(results[2].exit_code, 3);
  EXPECT_THAT(results[2].message, ::testing::HasSubstr("all_reduce #5 not started on rank 2"));
  EXPECT_LT(results[2].seconds, 10.0);
}

TEST(Rendezvous, MissingRankIsNamed) {
  test::TempDir dir;
  GroupOptions options;
  options.timeout = 1s;
  DistEnv env;
  env.rank = 0;
  env.world_size = 3;
  options.hostname = "127.0.0.1";
  try {
    init_process_group(env, "file:" + (dir / "rdzv").string(), options);
    FAIL() << "no error";
  } catch (const StageError& error) {
    EXPECT_THAT(error.what(), ::testing::HasSubstr("did not join within 1.0 s"));
    EXPECT_THAT(error.what(), ::testing::HasSubstr("1, 2"));
  }
}

// The NCCL group on GPUs (one rank per GPU, at most two). Only a child may touch
// CUDA: a process that has initialised it cannot use it in a forked child.
int gpus_seen_by_a_child() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(static_cast<int>(std::min<std::size_t>(probe_devices().devices.size(), 9)));
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 0;
}

// A collective returns before the GPU has run it (the compute stream waits, not the
// host), and everything after it on the compute stream, host reads included, sees
// its result: many buckets back to back, each read only at the end.
TEST(NcclGroup, ResultsAreOrderedOnTheComputeStreamWithoutTheHostWaiting) {
  const int gpus = gpus_seen_by_a_child();
  if (gpus == 0) GTEST_SKIP() << "no usable CUDA device (NCCL is compiled, not run, here)";
  const int n = std::min(gpus, 2);
  test::TempDir dir;
  const auto results = run_ranks(n, "file:" + (dir / "rdzv").string(), [](ProcessGroup& group) {
    const int rank = group.rank(), size = group.size();
    const Device device = Device::cuda(rank);
    const auto nccl = group.device_group(device);
    expect(std::string(nccl->backend()) == "nccl", "an NCCL group");
    std::vector<Tensor> buckets;
    for (int i = 0; i < 20; ++i) {
      buckets.push_back(Tensor::full({1 << 18}, static_cast<float>((rank + 1) * (i + 1)), device));
      nccl->all_reduce(buckets.back(), ReduceOp::Sum);
      // Freed at once and reused by the next bucket's fill on the compute stream,
      // which must wait for the collective that still reads it.
      Tensor scratch = buckets.back().clone();
      nccl->all_reduce(scratch, ReduceOp::Sum);
    }
    const float ranks_sum = static_cast<float>(size * (size + 1) / 2);
    for (int i = 0; i < 20; ++i)
      for (const float v : buckets[static_cast<std::size_t>(i)].to(Device::cpu()).to_vector())
        expect(v == ranks_sum * static_cast<float>(i + 1), "bucket " + std::to_string(i));
  });
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(results[static_cast<std::size_t>(r)].exit_code, 0) << "rank " << r;
    EXPECT_EQ(results[static_cast<std::size_t>(r)].message, "ok") << "rank " << r;
  }
}

// With the host no longer waiting in the collective, the group's monitor thread
// enforces the timeout: rank 1 never arrives, rank 0's collective returns at once,
// its read of the result is freed by the abort, and its next collective fails
// with the reason.
TEST(NcclGroup, ACollectiveThatNeverCompletesTimesOutWithoutTheHostWaitingInIt) {
  if (gpus_seen_by_a_child() < 2) GTEST_SKIP() << "needs two GPUs";
  test::TempDir dir;
  GroupOptions options;
  options.timeout = 3s;
  const auto results = run_ranks(
      2, "file:" + (dir / "rdzv").string(),
      [](ProcessGroup& group) {
        const Device device = Device::cuda(group.rank());
        const auto nccl = group.device_group(device);
        Tensor t = Tensor::full({1000}, 1.0f, device);
        // Together once, so that NCCL has connected the ranks (it does so lazily, in
        // the first collective, which could not return before the peer came).
        nccl->all_reduce(t, ReduceOp::Sum);
        t.to(Device::cpu());
        if (group.rank() == 1) std::this_thread::sleep_for(8s);
        const auto start = Clock::now();
        nccl->all_reduce(t, ReduceOp::Sum);
        expect(Clock::now() - start < 1s, "the collective returned before its peer arrived");
        t.to(Device::cpu());
        nccl->all_reduce(t, ReduceOp::Sum);
      },
      options);
  EXPECT_EQ(results[0].exit_code, 3);
  EXPECT_THAT(results[0].message, ::testing::HasSubstr("ncclAllReduce (collective #"));
  EXPECT_THAT(results[0].message, ::testing::HasSubstr("timed out after 3 s"));
  EXPECT_LT(results[0].seconds, 10.0);
  EXPECT_EQ(results[1].exit_code, 3) << "rank 1 stops at its collective, seeing rank 0's abort";
}

TEST(GroupOptions, FromEnvironment) {
  const auto env = [](const char* value) {
    return [value](const char* name) -> const char* {
      return std::string_view(name) == "KILN_COLLECTIVE_TIMEOUT_S" ? value : nullptr;
    };
  };
  EXPECT_EQ(group_options_from_env(env("2.5")).timeout, 2500ms);
  for (const char* bad : {"0", "-1", "ten", "5s"})
    EXPECT_THROW(group_options_from_env(env(bad)), ConfigError) << bad;
}

}  // namespace
}  // namespace kiln::dist
