// Acceptance: a data set several times the loader's memory budget streams through
// one epoch with peak RSS growth under budget + a fixed margin. Measured in a
// forked child, whose peak (VmHWM, reset through /proc/self/clear_refs) counts
// only what the loader itself touches.
#include <kiln/data/loader.h>

#include "data/loader_support.h"
#include "support/child_guard.h"
#include "support/support.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kMiB = 1 << 20;
constexpr std::int64_t kBudget = 16 * kMiB;
// What the loader uses beyond its budget: HDF5's chunk caches (1 MiB per array)
// and inflate buffers (a chunk each, 512 KiB), the reader thread's stack and
// malloc arena, code pages first touched, and the Batch bookkeeping. Measured on
// Debian 12 (glibc 2.36, HDF5 1.10.8): peak RSS grew 20.0 MiB, 4 MiB over the budget.
constexpr std::int64_t kMargin = 8 * kMiB;

std::int64_t status_kib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  return -1;
}

struct Measurement {
  std::int64_t growth_bytes = -1;
  std::int64_t rows = 0;
  std::int64_t checksum = 0;
};

// In the child: one shuffled epoch with batches of 256, every byte read.
Measurement stream_one_epoch(const fs::path& file) {
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
  const std::int64_t baseline = status_kib("VmRSS");
  LoaderOptions options;
  options.file = file;
  options.global_batch_size = 256;
  options.seed = 7;
  options.memory_budget_bytes = kBudget;
  Measurement result;
  {
    StreamingLoader loader(options);
    loader.start_epoch(0);
    while (auto batch = loader.next()) {
      result.rows += batch->rows;
      for (const std::uint8_t byte : batch->array("x").bytes) result.checksum += byte;
    }
  }
  result.growth_bytes = (status_kib("VmHWM") - baseline) * 1024;
  return result;
}

TEST(LoaderMemory, DataThreeTimesTheBudgetStaysUnderBudgetPlusMargin) {
  if (kiln::test::kAddressSanitizer) GTEST_SKIP() << kiln::test::kRssUnderAsan;
  testing::ScratchDir dir;
  // 64 MiB of CIFAR-sized rows (3072 bytes), 4x the budget.
  const std::int64_t rows = 4 * kBudget / 3072;
  const fs::path file = testing::write_counting_dataset(dir.path(), rows, 3072).file;
  int channel[2];
  ASSERT_EQ(::pipe(channel), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::setpgid(0, 0);
    Measurement measurement{};
    try {
      measurement = stream_one_epoch(file);
    } catch (...) {
    }
    [[maybe_unused]] const auto written = ::write(channel[1], &measurement, sizeof measurement);
    ::_exit(0);
  }
  const test::ChildGuard guard(child);
  ::close(channel[1]);
  Measurement measurement;
  ASSERT_EQ(::read(channel[0], &measurement, sizeof measurement),
            static_cast<ssize_t>(sizeof measurement));
  ::close(channel[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_EQ(measurement.rows, rows);
  EXPECT_GT(measurement.checksum, 0);
  EXPECT_GT(measurement.growth_bytes, 0);
  std::printf("loader: %lld MiB of data, budget %lld MiB: peak RSS grew by %.1f MiB\n",
              static_cast<long long>(rows * 3073 / kMiB), static_cast<long long>(kBudget / kMiB),
              static_cast<double>(measurement.growth_bytes) / kMiB);
  EXPECT_LT(measurement.growth_bytes, kBudget + kMargin);
}

}  // namespace
}  // namespace kiln::data
