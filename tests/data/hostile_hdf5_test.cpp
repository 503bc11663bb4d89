// HDF5 files whose declared sizes cannot be real: a tiny chunked file that
// declares a terabyte, and shapes whose byte count is past any bound. Each is
// refused with one DataError naming the file, the array and the size, before
// anything is allocated.
#include <kiln/data/dataset.h>
#include <kiln/data/import.h>
#include <kiln/error.h>

#include "data/data_test_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/resource.h>

#include <cstdlib>
#include <vector>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ScopedEnv;

// A file holding one chunked u8 dataset `name` of `dims` with no chunk written:
// HDF5 stores nothing for it, so the file stays a few KB whatever it declares.
void write_hollow_file(const fs::path& file, const std::vector<hsize_t>& dims,
                       const char* name = "x") {
  const hid_t handle = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(handle, 0);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  ASSERT_GE(space, 0);
  const hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
  const std::vector<hsize_t> chunk(dims.size(), 1024);
  ASSERT_GE(H5Pset_chunk(properties, static_cast<int>(chunk.size()), chunk.data()), 0);
  const hid_t dataset =
      H5Dcreate2(handle, name, H5T_STD_U8LE, space, H5P_DEFAULT, properties, H5P_DEFAULT);
  ASSERT_GE(dataset, 0);
  H5Dclose(dataset);
  H5Pclose(properties);
  H5Sclose(space);
  H5Fclose(handle);
}

std::string import_error(const fs::path& file, const fs::path& registry) {
  DatasetStore store(registry);
  ImportOptions options;
  options.sources = {file};
  options.arrays = {"x"};
  options.name = "t";
  try {
    import_dataset(store, options);
  } catch (const DataError& error) {
    return error.what();
  }
  ADD_FAILURE() << "import of " << file << " did not throw DataError";
  return {};
}

long peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

TEST(HostileHdf5, TinyFileDeclaringATerabyteIsRefusedQuicklyWithBoundedMemory) {
  testing::ScratchDir dir;
  const fs::path file = dir / "hollow.h5";
  write_hollow_file(file, {hsize_t{1} << 40});
  ASSERT_LT(fs::file_size(file), 64u * 1024);
  const std::string message = import_error(file, dir / "registry");
  EXPECT_THAT(message, HasSubstr(file.string() + ": array '/x' declares shape [1099511627776] of "
                                                 "u8, 1099511627776 bytes, but the file holds"));
  EXPECT_THAT(message, HasSubstr("refusing to allocate it"));
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_LT(peak_rss_mib(), 512);
}

// Under a small budget, what a file cannot hold compressed is refused even when
// the machine could allocate it: the old reader zero-filled 64 MiB here.
TEST(HostileHdf5, DeclaredSizeBeyondFileAndBudgetIsRefused) {
  testing::ScratchDir dir;
  const fs::path file = dir / "hollow.h5";
  write_hollow_file(file, {std::size_t{64} << 20});
  const ScopedEnv budget("KILN_IMPORT_MEMORY_BUDGET", "1048576");
  EXPECT_THAT(import_error(file, dir / "registry"),
              HasSubstr("67108864 bytes, but the file holds"));
}

// A hollow file within the budget is what HDF5 calls a dataset of fill values;
// it is read as one.
TEST(HostileHdf5, HollowFileWithinTheBudgetIsRead) {
  testing::ScratchDir dir;
  const fs::path file = dir / "hollow.h5";
  write_hollow_file(file, {std::size_t{4} << 20});
  const Array array = read_array(file, "x");
  EXPECT_EQ(array.bytes.size(), std::size_t{4} << 20);
}

TEST(HostileHdf5, ShapeBeyondTheBoundIsRefusedWhereverItIsRead) {
  testing::ScratchDir dir;
  const fs::path file = dir / "vast.h5";
  write_hollow_file(file, {hsize_t{1} << 40, hsize_t{1} << 20});
  // The import names the array by its path in the file, kiln's own reads by name.
  const std::string expected = file.string() +
                               ": array 'x': shape [1099511627776, 1048576] is impossibly large "
                               "(more than 2^48 bytes)";
  EXPECT_EQ(import_error(file, dir / "registry"),
            file.string() +
                ": array '/x': shape [1099511627776, 1048576] is impossibly large (more than 2^48 "
                "bytes)");
  try {
    read_array(file, "x");
    ADD_FAILURE() << "read_array accepted it";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()), expected);
  }
}

TEST(HostileHdf5, BudgetMustBeANumber) {
  testing::ScratchDir dir;
  const fs::path file = dir / "hollow.h5";
  write_hollow_file(file, {std::size_t{64} << 20});
  const ScopedEnv budget("KILN_IMPORT_MEMORY_BUDGET", "lots");
  EXPECT_THROW(read_array(file, "x"), ConfigError);
}

}  // namespace
}  // namespace kiln::data
