// What the machine leaves kiln: cgroup CPU quotas, other processes' load read from
// /proc/stat, and the cores that come out of both.
#include <kiln/cpu_threads.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

namespace kiln {
namespace {

TEST(QuotaCores, RoundsTheQuotaUpToWholeCores) {
  EXPECT_EQ(quota_cores("150000 100000\n"), 2);
  EXPECT_EQ(quota_cores("100000 100000\n"), 1);
  EXPECT_EQ(quota_cores("50000 100000"), 1);
  EXPECT_EQ(quota_cores("400000 100000\n"), 4);
}

TEST(QuotaCores, NoQuotaIsZero) {
  EXPECT_EQ(quota_cores("max 100000\n"), 0);
  EXPECT_EQ(quota_cores(""), 0);
  EXPECT_EQ(quota_cores("100000"), 0);
  EXPECT_EQ(quota_cores("x y"), 0);
  EXPECT_EQ(quota_cores("0 100000"), 0);
}

// Fields after "cpuN": user nice system idle iowait irq softirq steal; idle and
// iowait count as idle.
TEST(BusyCores, SumsTheBusyShareOfEachCpuOfTheSet) {
  const char* before =
      "cpu  900 0 0 900 0 0 0 0 0 0\n"
      "cpu0 100 0 0 100 0 0 0 0 0 0\n"
      "cpu1 200 0 0 0 0 0 0 0 0 0\n"
      "cpu2 0 0 0 300 0 0 0 0 0 0\n"
      "intr 12345\n";
  const char* after =
      "cpu  999 0 0 999 0 0 0 0 0 0\n"
      // cpu0: 30 user + 10 system + 10 irq busy, 40 idle + 10 iowait: half busy.
      "cpu0 130 0 10 140 10 10 0 0 0 0\n"
      // cpu1: all 100 ticks busy (user, nice, softirq, steal).
      "cpu1 260 10 0 0 0 0 20 10 0 0\n"
      "cpu2 100 0 0 300 0 0 0 0 0 0\n";
  EXPECT_DOUBLE_EQ(busy_cores(before, after, {0, 1}), 1.5);
  EXPECT_DOUBLE_EQ(busy_cores(before, after, {0}), 0.5);
  EXPECT_DOUBLE_EQ(busy_cores(before, after, {2}), 1.0);
  // A CPU missing from a reading, or whose ticks did not move, counts as idle.
  EXPECT_DOUBLE_EQ(busy_cores(before, after, {1, 7}), 1.0);
  EXPECT_DOUBLE_EQ(busy_cores(after, after, {0, 1, 2}), 0.0);
  EXPECT_DOUBLE_EQ(busy_cores("", after, {0}), 0.0);
}

// A thread of this process spinning for the whole window is at least half a core
// of load on this process's CPUs (other load only adds to it).
TEST(BusyCores, MeasuresASpinningThread) {
  std::atomic<bool> stop{false};
  std::thread spinner([&] {
    while (!stop.load(std::memory_order_relaxed)) {
    }
  });
  const double busy = measure_busy_cores(std::chrono::milliseconds(300));
  stop = true;
  spinner.join();
  EXPECT_GE(busy, 0.5);
  EXPECT_LE(busy, static_cast<double>(affinity_cpus().size()) + 0.01);
}

// The default thread count leaves out the cores that kiln found busy at start
// (KILN_BUSY_CORES, rounded), down to 1; a count asked for, or KILN_NUM_THREADS,
// is kept.
TEST(CpuThreads, TheDefaultLeavesOutTheCoresFoundBusy) {
  const int cores = available_cores();
  ::unsetenv("KILN_NUM_THREADS");
  ::setenv("KILN_BUSY_CORES", "0.6", 1);
  EXPECT_EQ(set_cpu_threads(0), std::max(1, cores - 1));
  ::setenv("KILN_BUSY_CORES", "1.9", 1);
  EXPECT_EQ(set_cpu_threads(0), std::max(1, cores - 2));
  ::setenv("KILN_BUSY_CORES", "64", 1);
  EXPECT_EQ(set_cpu_threads(0), 1);
  EXPECT_EQ(set_cpu_threads(3), 3);
  ::setenv("KILN_NUM_THREADS", "2", 1);
  EXPECT_EQ(set_cpu_threads(0), 2);
  ::unsetenv("KILN_NUM_THREADS");
  ::setenv("KILN_BUSY_CORES", "not a number", 1);
  EXPECT_EQ(set_cpu_threads(0), cores);
  ::unsetenv("KILN_BUSY_CORES");
  EXPECT_EQ(set_cpu_threads(0), cores);
}

TEST(AvailableCores, AtLeastOneAndNoMoreThanTheAffinityMask) {
  EXPECT_GE(available_cores(), 1);
  EXPECT_LE(available_cores(), static_cast<int>(affinity_cpus().size()));
}

}  // namespace
}  // namespace kiln
