// Data larger than the memory budget: a 512 MiB HDF5 file (images and u16 labels in
// a group) imported and validated under a 64 MiB budget. The import streams from
// kiln-hdf5-reader into the version's file block by block, so the peak resident
// memory of kiln's process and of the reader stays within the budget plus a stated
// overhead. Measured, as a memory bound (not a time bound), in a child process of
// its own: kiln's VmHWM from /proc after resetting it, and the peak of every reader
// run through a wrapper that starts it and records its RUSAGE_CHILDREN peak (a
// reader started straight from the test would count the test's own resident pages,
// which the reader shares until its exec).
#include <kiln/data/dataset.h>
#include <kiln/data/import.h>
#include <kiln/data/validate.h>
#include <kiln/error.h>
#include <kiln/sanitizer.h>

#include "data/data_test_support.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kMiB = 1 << 20;
constexpr std::int64_t kRowBytes = 32 * 32 * 3;
constexpr std::int64_t kRows = 512 * kMiB / kRowBytes + 1;  // just over 512 MiB of images
constexpr std::int64_t kBudget = 64 * kMiB;
// Beyond the budget: HDF5's chunk caches, the writer's and reader's 4 MiB blocks,
// the pipe, the allocator's slack.
constexpr std::int64_t kOverhead = 32 * kMiB;

// /train/images u8 [kRows, 32, 32, 3] (chunked, uncompressed: the file is as large
// as the data) and /train/labels u16 [kRows], written in blocks.
void write_source(const fs::path& file) {
  const hid_t handle = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(handle, 0);
  const hid_t group = H5Gcreate2(handle, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[4] = {static_cast<hsize_t>(kRows), 32, 32, 3};
  const hsize_t chunk[4] = {1024, 32, 32, 3};
  const hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(properties, 4, chunk);
  const hid_t space = H5Screate_simple(4, dims, nullptr);
  const hid_t images =
      H5Dcreate2(group, "images", H5T_STD_U8LE, space, H5P_DEFAULT, properties, H5P_DEFAULT);
  const hid_t label_space = H5Screate_simple(1, dims, nullptr);
  const hid_t labels = H5Dcreate2(group, "labels", H5T_STD_U16LE, label_space, H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(images, 0);
  ASSERT_GE(labels, 0);
  constexpr std::int64_t kBlockRows = 4096;
  std::vector<std::uint8_t> block(kBlockRows * kRowBytes);
  std::vector<std::uint16_t> label_block(kBlockRows);
  for (std::int64_t first = 0; first < kRows; first += kBlockRows) {
    const std::int64_t rows = std::min(kBlockRows, kRows - first);
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t b = 0; b < kRowBytes; ++b)
        block[r * kRowBytes + b] = static_cast<std::uint8_t>((first + r) * 7 + b * 13);
      label_block[r] = static_cast<std::uint16_t>((first + r) % 1000);
    }
    hsize_t start[4] = {static_cast<hsize_t>(first), 0, 0, 0};
    hsize_t count[4] = {static_cast<hsize_t>(rows), 32, 32, 3};
    const hid_t memory = H5Screate_simple(4, count, nullptr);
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    ASSERT_GE(H5Dwrite(images, H5T_NATIVE_UINT8, memory, space, H5P_DEFAULT, block.data()), 0);
    H5Sclose(memory);
    const hid_t label_memory = H5Screate_simple(1, count, nullptr);
    H5Sselect_hyperslab(label_space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    ASSERT_GE(H5Dwrite(labels, H5T_NATIVE_UINT16, label_memory, label_space, H5P_DEFAULT,
                       label_block.data()),
              0);
    H5Sclose(label_memory);
  }
  H5Dclose(labels);
  H5Dclose(images);
  H5Sclose(label_space);
  H5Sclose(space);
  H5Pclose(properties);
  H5Gclose(group);
  ASSERT_GE(H5Fclose(handle), 0);
}

// Stands in for kiln-hdf5-reader: runs it, then appends its peak RSS (KiB) to a log.
constexpr const char* kMeasuringReader = R"(#!{python}
import os, resource, subprocess, sys
rc = subprocess.call([{reader!r}] + sys.argv[1:])
with open({log!r}, "a") as log:
    log.write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc if rc >= 0 else 128 - rc)
)";

std::int64_t status_kib(const char* key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::string_view(key).size()));
  return -1;
}

TEST(BoundedImport, FileLargerThanTheBudgetImportsAndValidatesWithinIt) {
  testing::ScratchDir dir;
  const fs::path source = dir.path() / "big.h5";
  write_source(source);
  ASSERT_GT(static_cast<std::int64_t>(fs::file_size(source)), 512 * kMiB);

  const fs::path log = dir.path() / "reader-peaks.txt";
  const fs::path wrapper = dir.path() / "measuring-reader";
  {
    std::string script = kMeasuringReader;
    const auto put = [&](std::string_view key, const std::string& value) {
      script.replace(script.find(key), key.size(), value);
    };
    put("{python}", KILN_PYTHON);
    put("{reader!r}", "'" KILN_BINARY_DIR "/libexec/kiln/kiln-hdf5-reader'");
    put("{log!r}", "'" + log.string() + "'");
    std::ofstream(wrapper) << script;
    fs::permissions(wrapper, fs::perms::owner_all);
  }
  const testing::ScopedEnv reader("KILN_HDF5_READER", wrapper.c_str());

  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    // The measurement: resident memory from here on, in this process and the reader.
    ::setenv("KILN_IMPORT_MEMORY_BUDGET", std::to_string(kBudget).c_str(), 1);
    std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
    const std::int64_t before = status_kib("VmRSS:");
    std::string report;
    try {
      DatasetStore store(dir.path() / "registry");
      ImportOptions options;
      options.sources = {source};
      options.name = "big";
      options.arrays = {"x=/train/images", "y=/train/labels"};
      const DatasetVersion version = import_dataset(store, options);
      ValidationOptions checks;
      checks.max_duplicate_fraction = 1;
      const ValidationReport validation = validate_dataset(version.file, checks);
      std::ostringstream out;
      out << version.rows() << " " << validation.passed() << " " << before << " "
          << status_kib("VmHWM:");
      report = out.str();
    } catch (const std::exception& error) {
      report = std::string("error ") + error.what();
    }
    [[maybe_unused]] const auto written = ::write(pipe_fds[1], report.data(), report.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string report;
  char buffer[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) report.append(buffer, n);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << report;
  ASSERT_NE(report.rfind("error", 0), 0u) << report;
  std::istringstream fields(report);
  std::int64_t rows = 0, before = 0, peak = 0, reader_peak = 0, runs = 0;
  bool passed = false;
  fields >> rows >> passed >> before >> peak;
  std::ifstream peaks(log);
  for (std::int64_t kib = 0; peaks >> kib; ++runs) reader_peak = std::max(reader_peak, kib);
  EXPECT_GE(runs, 3) << "the import, the check of the new version and the validation each "
                        "run the reader";
  EXPECT_EQ(rows, kRows);
  EXPECT_TRUE(passed);
  const std::int64_t limit_kib = (kBudget + kOverhead) / 1024;
  std::cout << "import + validate of " << kRows * kRowBytes / kMiB << " MiB under a "
            << kBudget / kMiB << " MiB budget: kiln's peak RSS grew by " << (peak - before) / 1024
            << " MiB, the reader's peak RSS was " << reader_peak / 1024 << " MiB (limit "
            << limit_kib / 1024 << " MiB each)\n";
  // Under AddressSanitizer freed blocks wait in its quarantine (256 MiB by default),
  // so resident memory says nothing about kiln's; the import is still checked there
  // for memory errors, and its bound here, in the normal build.
  if (!kAddressSanitizer) {
    EXPECT_LT(peak - before, limit_kib);
    EXPECT_LT(reader_peak, limit_kib);
  }
}

}  // namespace
}  // namespace kiln::data
