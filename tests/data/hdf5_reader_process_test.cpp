// kiln-hdf5-reader: HDF5 files are read first, or for imports only, in a process
// of its own, so that a crash, hang or runaway allocation of libhdf5 on a damaged
// file becomes one DataError naming the file. Fake readers (shell scripts) stand
// for each way it can end; the real one reads real files. The inputs on which
// libhdf5 itself crashes are replayed by the hdf5 fuzz target
// (tests/fuzz/regressions/hdf5/).
#include <kiln/data/dataset.h>
#include <kiln/data/import.h>
#include <kiln/data/reader.h>
#include <kiln/error.h>

#include "data/data_test_support.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ScopedEnv;

class Hdf5ReaderProcess : public ::testing::Test {
 protected:
  // A stored dataset version with `arrays`, whose file the tests read.
  fs::path stored(const std::vector<Array>& arrays) {
    return DatasetStore(dir_.path() / "registry").put("t", arrays, {}).file;
  }

  // An executable shell script standing in for kiln-hdf5-reader.
  fs::path fake_reader(const std::string& body) {
    const fs::path script = dir_.path() / ("reader-" + std::to_string(++scripts_));
    std::ofstream(script) << "#!/bin/sh\n" << body << "\n";
    ::chmod(script.c_str(), 0755);
    return script;
  }

  std::string import_error(const fs::path& file, std::vector<std::string> names = {"x"}) {
    ImportOptions options;
    options.sources = {file};
    options.format = SourceFormat::Hdf5;
    options.arrays = std::move(names);
    try {
      read_sources(options);
    } catch (const DataError& error) {
      return error.what();
    }
    ADD_FAILURE() << "import of " << file << " did not throw DataError";
    return {};
  }

  testing::ScratchDir dir_;
  int scripts_ = 0;
};

std::string info_error(const fs::path& file) {
  try {
    read_dataset_info(file);
  } catch (const DataError& error) {
    return error.what();
  }
  ADD_FAILURE() << "read_dataset_info(" << file << ") did not throw DataError";
  return {};
}

TEST_F(Hdf5ReaderProcess, ImportedArraysArriveWhole) {
  // Larger than the reader's 4 MiB blocks, with a row count that does not divide
  // them; several dtypes and ranks.
  const std::vector<Array> arrays = {
      testing::make_array("images", DType::U8, {3001, 3000}, testing::noise(3001 * 3000, 1)),
      testing::make_array("values", DType::F32, {3001, 2, 2}, testing::noise(3001 * 16, 2)),
      testing::make_array("labels", DType::I64, {3001}, testing::noise(3001 * 8, 3))};
  const fs::path file = stored(arrays);
  ImportOptions options;
  options.sources = {file};
  options.arrays = {"values", "images", "labels"};
  const ImportedData data = read_sources(options);
  ASSERT_EQ(data.arrays.size(), 3u);
  for (const Array& imported : data.arrays) {
    const Array& original = *std::find_if(arrays.begin(), arrays.end(),
                                          [&](const Array& a) { return a.name == imported.name; });
    EXPECT_EQ(imported.dtype, original.dtype) << imported.name;
    EXPECT_EQ(imported.shape, original.shape) << imported.name;
    EXPECT_TRUE(imported.bytes == original.bytes) << imported.name;
  }
  EXPECT_EQ(data.arrays[0].name, "values");
}

TEST_F(Hdf5ReaderProcess, AMissingArrayIsNamedWhateverTheOtherArraysHold) {
  // A root dataset of a type kiln does not read (a fixed-length string) used to
  // replace the error about the missing array with one about itself.
  const fs::path file = dir_.path() / "mixed.h5";
  const hid_t handle = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[1] = {2};
  const hid_t space = H5Screate_simple(1, dims, nullptr);
  const hid_t text = H5Tcopy(H5T_C_S1);
  H5Tset_size(text, 8);
  for (const auto& [name, type] : {std::pair{"notes", text}, std::pair{"x", H5T_STD_U8LE}})
    H5Dclose(H5Dcreate2(handle, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Tclose(text);
  H5Sclose(space);
  H5Fclose(handle);
  EXPECT_THAT(import_error(file, {"y"}),
              HasSubstr(file.string() + ": no array at '/y' (/y is missing; it has /notes, /x)"));
}

TEST_F(Hdf5ReaderProcess, AReaderThatCrashesIsOneErrorNamingTheFile) {
  const fs::path file = stored({testing::make_array("x", DType::U8, {2}, {1, 2})});
  const ScopedEnv reader("KILN_HDF5_READER", fake_reader("kill -SEGV $$").c_str());
  EXPECT_EQ(info_error(file),
            file.string() +
                ": libhdf5 crashed reading it (SIGSEGV in kiln-hdf5-reader): the file is damaged");
  EXPECT_THAT(import_error(file), HasSubstr(file.string() + ": libhdf5 crashed reading it"));
  EXPECT_THROW(DatasetReader{file}, DataError);
}

// scancel and Ctrl-C signal the whole process group, the reader included, and it
// may die before kiln notices its own signal: that is the run being stopped, not a
// damaged file (a Slurm array task cancelled mid-trial had its trial marked failed
// instead of re-queued). SIGKILL stays a crash: the kernel's OOM killer sends it too.
TEST_F(Hdf5ReaderProcess, AReaderStoppedFromOutsideIsAnInterruption) {
  const fs::path file = stored({testing::make_array("x", DType::U8, {2}, {1, 2})});
  for (const std::string signal : {"TERM", "INT", "HUP"}) {
    const ScopedEnv reader("KILN_HDF5_READER", fake_reader("kill -" + signal + " $$").c_str());
    try {
      DatasetReader{file};
      ADD_FAILURE() << signal << ": no error";
    } catch (const InterruptedError& error) {
      EXPECT_EQ(std::string(error.what()),
                file.string() + ": reading it was stopped by SIG" + signal + " (kiln-hdf5-reader)");
    }
  }
}

TEST_F(Hdf5ReaderProcess, AReaderThatHangsIsStopped) {
  const fs::path file = stored({testing::make_array("x", DType::U8, {2}, {1, 2})});
  const ScopedEnv reader("KILN_HDF5_READER", fake_reader("exec sleep 60").c_str());
  const ScopedEnv timeout("KILN_HDF5_READER_TIMEOUT", "0.2");
  EXPECT_THAT(info_error(file),
              HasSubstr(file.string() + ": reading it as HDF5 made no progress for 0.2 s "
                                        "(kiln-hdf5-reader was stopped"));
  EXPECT_THAT(import_error(file), HasSubstr("made no progress for 0.2 s"));
}

TEST_F(Hdf5ReaderProcess, AReaderOutOfMemoryNamesTheBudget) {
  const fs::path file = stored({testing::make_array("x", DType::U8, {2}, {1, 2})});
  const ScopedEnv reader("KILN_HDF5_READER", fake_reader("exit 5").c_str());
  const ScopedEnv budget("KILN_IMPORT_MEMORY_BUDGET", "1048576");
  EXPECT_THAT(import_error(file),
              HasSubstr(file.string() + ": reading it needed more memory than the 1048576 "
                                        "bytes allowed"));
}

// Each epoch's validation and each trial of a sweep open the same files again: a
// file is checked once while it stays as it was, and again once anything wrote it.
TEST_F(Hdf5ReaderProcess, AnUnchangedFileIsCheckedOnce) {
  const fs::path file = stored({testing::make_array("x", DType::U8, {2}, {1, 2})});
  const fs::path count = dir_.path() / "checks";
  const fs::path real = fs::path(KILN_BINARY_DIR) / "libexec" / "kiln" / "kiln-hdf5-reader";
  const ScopedEnv reader("KILN_HDF5_READER", fake_reader("echo check >> '" + count.string() +
                                                         "'\nexec '" + real.string() + "' \"$@\"")
                                                 .c_str());
  const auto checks = [&] {
    std::ifstream in(count);
    return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
  };
  // Written just now: it could still be rewritten within the clock's resolution
  // without its times changing, so it is checked every time.
  read_dataset_info(file);
  read_dataset_info(file);
  EXPECT_EQ(checks(), 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  read_dataset_info(file);
  read_dataset_info(file);
  DatasetReader{file};
  EXPECT_EQ(checks(), 3);
  // A write that keeps the size and puts the modification time back still changes
  // the status-change time.
  struct stat before {};
  ASSERT_EQ(::stat(file.c_str(), &before), 0);
  ::chmod(file.c_str(), 0600);
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
  read_dataset_info(file);
  EXPECT_EQ(checks(), 4);
  // Another reader checks again.
  const ScopedEnv crashing("KILN_HDF5_READER", fake_reader("kill -SEGV $$").c_str());
  EXPECT_THAT(info_error(file), HasSubstr("libhdf5 crashed reading it"));
}

TEST_F(Hdf5ReaderProcess, AReaderThatLiesAboutTheArraysIsCaught) {
  const fs::path file = stored({testing::make_array("x", DType::U8, {2}, {1, 2})});
  {
    const ScopedEnv reader("KILN_HDF5_READER", fake_reader("echo '{\"arrays\": []}'").c_str());
    EXPECT_THAT(import_error(file), HasSubstr("kiln-hdf5-reader sent a malformed header"));
  }
  {
    const ScopedEnv reader(
        "KILN_HDF5_READER",
        fake_reader(R"(echo '{"arrays": [{"name": "x", "dtype": "u8", "shape": [4]}]}'; printf ab)")
            .c_str());
    EXPECT_THAT(import_error(file), HasSubstr("kiln-hdf5-reader ended before sending every array"));
  }
}

TEST_F(Hdf5ReaderProcess, WithoutTheReaderProgramNothingIsRead) {
  const fs::path file = stored({testing::make_array("x", DType::U8, {2}, {1, 2})});
  const ScopedEnv reader("KILN_HDF5_READER", "/nonexistent/kiln-hdf5-reader");
  EXPECT_THAT([&] { read_dataset_info(file); },
              ::testing::ThrowsMessage<InternalError>(
                  HasSubstr("cannot read HDF5 files without kiln-hdf5-reader: cannot run "
                            "/nonexistent/kiln-hdf5-reader")));
}

}  // namespace
}  // namespace kiln::data
