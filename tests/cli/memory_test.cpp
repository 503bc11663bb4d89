// Training streams its data: a data set five times the loader's memory budget
// trains an epoch with the process's peak RSS growing by less than the budget plus
// a fixed margin over the same run on a small data set.
#include <gmock/gmock.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "cli_fixture.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

// 32x32 u8 images (1 KiB a row) with labels 0..9.
void write_images(const fs::path& dir, std::uint32_t rows) {
  std::vector<std::uint8_t> images(static_cast<std::size_t>(rows) * 1024), labels(rows);
  for (std::uint32_t i = 0; i < rows; ++i) {
    labels[i] = static_cast<std::uint8_t>(i % 10);
    for (std::uint32_t p = 0; p < 1024; ++p)
      images[static_cast<std::size_t>(i) * 1024 + p] = static_cast<std::uint8_t>((i * 31 + p * 7) % 251);
  }
  write_idx(dir / "images.idx", 0x08, {rows, 32, 32}, images);
  write_idx(dir / "labels.idx", 0x08, {rows}, labels);
}

const char* kPipeline = R"(name: memory
stages:
  data:
    uses: import
    with: {source: images.idx, labels: labels.idx}
  train:
    uses: train
    needs: [data]
    with:
      model: {layers: [flatten, {linear: {out: 10}}]}
      epochs: 1
      batch_size: 256
      memory_mb: 8
      threads: 1
      checkpoint_every: 0
)";

// Peak RSS in MiB of `kiln run p.yaml` in `dir` (the data imported beforehand).
double peak_rss_mib(const fs::path& dir) {
  const std::string kiln = std::string(KILN_BINARY_DIR) + "/bin/kiln";
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0 || !std::freopen("/dev/null", "w", stdout) ||
        !std::freopen("/dev/null", "w", stderr))
      ::_exit(126);
    ::execl(kiln.c_str(), kiln.c_str(), "run", "p.yaml", "--force", "train", nullptr);
    ::_exit(127);
  }
  int status = 0;
  struct rusage usage {};
  ::wait4(pid, &status, 0, &usage);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "kiln run failed in " << dir;
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB
}

double trained_peak(const fs::path& dir, std::uint32_t rows) {
  fs::create_directories(dir);
  write_images(dir, rows);
  write_text(dir / "p.yaml", kPipeline);
  // Import first: it reads its sources whole; the measured run only trains.
  EXPECT_EQ(run_command({std::string(KILN_BINARY_DIR) + "/bin/kiln", "run", "p.yaml"}, {}, dir).exit_code, 0);
  return peak_rss_mib(dir);
}

TEST(StreamingTraining, PeakMemoryStaysWithinTheLoaderBudgetPlusAFixedMargin) {
  if (kAddressSanitizer) GTEST_SKIP() << kRssUnderAsan;
  TempDir dir;
  const double small = trained_peak(dir / "small", 2'000);   // 2 MiB of images
  const double large = trained_peak(dir / "large", 40'960);  // 40 MiB: 5x the 8 MiB budget
  std::cout << "peak RSS: " << small << " MiB (2 MiB data), " << large << " MiB (40 MiB data)\n";
  // The loader holds at most its 8 MiB window plus its prefetched batches; 12 MiB
  // of margin covers the batches, HDF5's chunk cache and allocator slack.
  EXPECT_LT(large - small, 8.0 + 12.0);
}

}  // namespace
}  // namespace kiln::test
