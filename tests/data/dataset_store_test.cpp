#include <kiln/data/dataset.h>
#include <kiln/error.h>

#include "data/data_test_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>

#include <chrono>
#include <regex>
#include <thread>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;
using ::testing::HasSubstr;
using testing::make_array;
using testing::noise;
using testing::read_bytes;
using testing::ScratchDir;
using testing::write_bytes;

std::vector<Array> images_and_labels(std::uint64_t seed, std::int64_t rows = 50) {
  return {
      make_array("x", DType::U8, {rows, 4, 4}, noise(static_cast<std::size_t>(rows) * 16, seed)),
      make_array("y", DType::U8, {rows}, noise(static_cast<std::size_t>(rows), seed + 1))};
}

std::vector<std::string> file_names(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(DatasetStore, PutWritesOneFileNamedByContentId) {
  ScratchDir registry;
  DatasetStore store(registry.path());
  const auto arrays = images_and_labels(1);
  const nlohmann::json source = {{"images", {{"path", "/a"}, {"sha256", "00"}}}};

  const DatasetVersion version = store.put("train", arrays, source);
  EXPECT_EQ(version.id, content_id(arrays));
  EXPECT_EQ(store.directory(), registry.path() / "datasets");
  EXPECT_EQ(version.file, registry.path() / "datasets" / (version.id + ".h5"));
  EXPECT_TRUE(fs::is_regular_file(version.file));
  EXPECT_EQ(version.name, "train");
  EXPECT_EQ(version.parent, "");
  EXPECT_EQ(version.source, source);
  EXPECT_TRUE(
      std::regex_match(version.created, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << version.created;
  ASSERT_EQ(version.arrays.size(), 2u);
  EXPECT_EQ(version.arrays[0].name, "x");
  EXPECT_EQ(version.arrays[0].dtype, DType::U8);
  EXPECT_EQ(version.arrays[0].shape, (std::vector<std::int64_t>{50, 4, 4}));
  EXPECT_EQ(version.arrays[1].name, "y");
  EXPECT_EQ(version.arrays[1].shape, (std::vector<std::int64_t>{50}));
  // Nothing but the version and the lock file is left behind.
  EXPECT_EQ(file_names(store.directory()), (std::vector<std::string>{".lock", version.id + ".h5"}));
}

TEST(DatasetStore, PutTwiceReturnsTheExistingVersionUnchanged) {
  ScratchDir registry;
  DatasetStore store(registry.path());
  const DatasetVersion first = store.put("first", images_and_labels(2), {{"run", 1}});
  const Bytes file_bytes = read_bytes(first.file);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));

  const DatasetVersion second = store.put("second", images_and_labels(2), {{"run", 2}});
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(second.file, first.file);
  EXPECT_EQ(second.name, "first");
  EXPECT_EQ(second.created, first.created);
  EXPECT_EQ(second.source, first.source);
  EXPECT_EQ(read_bytes(first.file), file_bytes);
  EXPECT_EQ(store.list().size(), 1u);
}

TEST(DatasetStore, PutRecordsTheParent) {
  ScratchDir registry;
  DatasetStore store(registry.path());
  const DatasetVersion parent = store.put("raw", images_and_labels(3), {});
  const DatasetVersion child = store.put("clean", images_and_labels(4), {}, parent.id);
  EXPECT_EQ(child.parent, parent.id);
  EXPECT_EQ(read_dataset_info(child.file).parent, parent.id);
  EXPECT_THROW(store.put("bad", images_and_labels(5), {}, "not-an-id"), DataError);
}

TEST(DatasetStore, FindsByIdPrefixAndNewestName) {
  ScratchDir registry;
  DatasetStore store(registry.path());
  const DatasetVersion old_train = store.put("train", images_and_labels(10), {});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const DatasetVersion test = store.put("test", images_and_labels(20), {});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const DatasetVersion new_train = store.put("train", images_and_labels(30), {});

  EXPECT_EQ(store.find(test.id)->file, test.file);
  EXPECT_EQ(store.find(test.id.substr(0, 8))->id, test.id);
  std::string upper = old_train.id.substr(0, 12);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(store.find(upper)->id, old_train.id);
  EXPECT_EQ(store.find("train")->id, new_train.id);
  EXPECT_EQ(store.find("test")->id, test.id);
  EXPECT_FALSE(store.find("validation").has_value());
  EXPECT_FALSE(store.find(test.id.substr(0, 7)).has_value());  // too short for a prefix
  EXPECT_FALSE(store.find(std::string(64, '0')).has_value());
  EXPECT_FALSE(DatasetStore(registry / "elsewhere").find("train").has_value());

  const std::vector<DatasetVersion> all = store.list();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, old_train.id);  // oldest first
  EXPECT_EQ(all[1].id, test.id);
  EXPECT_EQ(all[2].id, new_train.id);
}

TEST(DatasetStore, AmbiguousPrefixIsAnError) {
  ScratchDir registry;
  DatasetStore store(registry.path());
  const DatasetVersion version = store.put("train", images_and_labels(11), {});
  std::string twin = version.id;
  twin.back() = twin.back() == '0' ? '1' : '0';
  fs::copy_file(version.file, store.directory() / (twin + ".h5"));

  EXPECT_THROW(store.find(version.id.substr(0, 10)), ConfigError);
  EXPECT_EQ(store.find(version.id)->id, version.id);
}

TEST(DatasetStore, ListSkipsDamagedFilesAndTemporaries) {
  ScratchDir registry;
  DatasetStore store(registry.path());
  const DatasetVersion good = store.put("good", images_and_labels(12), {});
  write_bytes(store.directory() / (std::string(64, 'a') + ".h5"), Bytes(100, 7));
  fs::create_directory(store.directory() / ".tmp-leftover");
  write_bytes(store.directory() / ".tmp-leftover" / (std::string(64, 'b') + ".h5"), {1});

  const std::vector<DatasetVersion> all = store.list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, good.id);
}

TEST(DatasetStore, PutRefusesArraysThatDisagreeOnRows) {
  ScratchDir registry;
  DatasetStore store(registry.path());
  std::vector<Array> arrays = images_and_labels(13);
  arrays[1] = make_array("y", DType::U8, {49}, noise(49, 1));
  try {
    store.put("train", arrays, {});
    FAIL() << "put accepted arrays of 50 and 49 rows";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("arrays disagree on rows: 'x' has 50, 'y' has 49"));
  }
  arrays[1] = make_array("a/b", DType::U8, {50}, noise(50, 1));
  EXPECT_THROW(store.put("train", arrays, {}), DataError);
  EXPECT_FALSE(fs::exists(store.directory()));
}

TEST(DatasetStore, ReadArrayReturnsTheExactBytesOfEveryDtype) {
  ScratchDir registry;
  DatasetStore store(registry.path());
  const std::vector<DType> dtypes{DType::U8,  DType::I8,  DType::I16, DType::I32, DType::I64,
                                  DType::F32, DType::F64, DType::F16, DType::BF16};
  std::vector<Array> arrays;
  for (std::size_t i = 0; i < dtypes.size(); ++i) {
    const std::size_t rows = 300;
    const std::size_t bytes = rows * 3 * size_of(dtypes[i]);
    arrays.push_back(make_array(std::string(name_of(dtypes[i])), dtypes[i],
                                {static_cast<std::int64_t>(rows), 3}, noise(bytes, 40 + i)));
  }
  const DatasetVersion version = store.put("all-types", arrays, {});
  ASSERT_EQ(version.arrays.size(), dtypes.size());
  for (const Array& expected : arrays) {
    const Array actual = read_array(version.file, expected.name);
    EXPECT_EQ(actual.name, expected.name);
    EXPECT_EQ(actual.dtype, expected.dtype) << expected.name;
    EXPECT_EQ(actual.shape, expected.shape) << expected.name;
    EXPECT_EQ(actual.bytes, expected.bytes) << expected.name;
  }
  EXPECT_EQ(content_id(arrays), version.id);
}

TEST(DatasetStore, EmptyArraysRoundTrip) {
  ScratchDir registry;
  DatasetStore store(registry.path());
  const DatasetVersion version = store.put(
      "empty", {make_array("x", DType::F32, {0, 5}, {}), make_array("y", DType::U8, {0}, {})}, {});
  const Array x = read_array(version.file, "x");
  EXPECT_EQ(x.shape, (std::vector<std::int64_t>{0, 5}));
  EXPECT_EQ(x.dtype, DType::F32);
  EXPECT_TRUE(x.bytes.empty());
}

TEST(DatasetStore, ReadArrayOfAMissingNameListsTheArrays) {
  ScratchDir registry;
  const DatasetVersion version = DatasetStore(registry.path()).put("t", images_and_labels(14), {});
  try {
    read_array(version.file, "z");
    FAIL() << "read_array found an array that does not exist";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(),
                HasSubstr(version.file.string() + ": no array named 'z' (arrays: x, y)"));
  }
  EXPECT_THROW(read_array(version.file, "/x"), DataError);
}

// Chunk shape and filter pipeline of one array, read with the HDF5 C API.
struct Layout {
  std::vector<hsize_t> chunk;
  std::vector<H5Z_filter_t> filters;
  unsigned deflate_level = 0;
};

Layout layout_of(const fs::path& file, const char* name) {
  Layout layout;
  const hid_t handle = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t dataset = H5Dopen2(handle, name, H5P_DEFAULT);
  const hid_t properties = H5Dget_create_plist(dataset);
  if (H5Pget_layout(properties) == H5D_CHUNKED) {
    layout.chunk.resize(8);
    layout.chunk.resize(static_cast<std::size_t>(H5Pget_chunk(properties, 8, layout.chunk.data())));
  }
  for (int i = 0; i < H5Pget_nfilters(properties); ++i) {
    unsigned flags = 0, values[4] = {};
    std::size_t count = 4;
    layout.filters.push_back(H5Pget_filter2(properties, static_cast<unsigned>(i), &flags, &count,
                                            values, 0, nullptr, nullptr));
    if (layout.filters.back() == H5Z_FILTER_DEFLATE) layout.deflate_level = values[0];
  }
  H5Pclose(properties);
  H5Dclose(dataset);
  H5Fclose(handle);
  return layout;
}

TEST(DatasetStore, ChunksAboutHalfAMebibyteOfRowsWithShuffleForWideTypes) {
  ScratchDir registry;
  const DatasetVersion version =
      DatasetStore(registry.path())
          .put("layout",
               {make_array("x", DType::U8, {2000, 28, 28}, noise(2000 * 784, 5)),
                make_array("y", DType::U8, {2000}, noise(2000, 6)),
                make_array("f", DType::F32, {2000, 100}, noise(2000 * 400, 7))},
               {});
  const Layout x = layout_of(version.file, "x");
  EXPECT_EQ(x.chunk, (std::vector<hsize_t>{668, 28, 28}));  // 524288 / 784 rows
  EXPECT_EQ(x.filters, (std::vector<H5Z_filter_t>{H5Z_FILTER_DEFLATE}));
  EXPECT_EQ(x.deflate_level, 4u);
  const Layout y = layout_of(version.file, "y");
  EXPECT_EQ(y.chunk, (std::vector<hsize_t>{2000}));  // all rows fit in one chunk
  const Layout f = layout_of(version.file, "f");
  EXPECT_EQ(f.chunk, (std::vector<hsize_t>{1310, 100}));  // 524288 / 400 rows
  EXPECT_EQ(f.filters, (std::vector<H5Z_filter_t>{H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE}));
}

// A compressible array, so that its chunks really go through deflate.
std::vector<Array> patterned(std::int64_t rows) {
  Bytes x(static_cast<std::size_t>(rows) * 1024);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<std::uint8_t>((i * 7) % 251 / 16);
  return {make_array("x", DType::U8, {rows, 1024}, std::move(x))};
}

TEST(DatasetStore, TruncatedFileIsADataError) {
  ScratchDir registry;
  const DatasetVersion version = DatasetStore(registry.path()).put("t", patterned(2048), {});
  const Bytes whole = read_bytes(version.file);
  for (const double keep : {0.0, 0.01, 0.5, 0.99}) {
    const fs::path cut = registry / "cut.h5";
    write_bytes(
        cut, Bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(
                                                      keep * static_cast<double>(whole.size()))));
    SCOPED_TRACE(keep);
    try {
      read_dataset_info(cut);
      FAIL() << "read_dataset_info accepted a truncated file";
    } catch (const DataError& error) {
      EXPECT_THAT(error.what(), HasSubstr(cut.string() + ": cannot open as an HDF5 file"));
    }
    EXPECT_THROW(read_array(cut, "x"), DataError);
  }
}

TEST(DatasetStore, CorruptChunkIsADataError) {
  ScratchDir registry;
  const DatasetVersion version = DatasetStore(registry.path()).put("t", patterned(2048), {});
  // 64 bytes inside the second compressed chunk of x, found through HDF5's index.
  haddr_t address = HADDR_UNDEF;
  {
    const hid_t file = H5Fopen(version.file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t dataset = H5Dopen2(file, "x", H5P_DEFAULT);
    hsize_t size = 0;
    unsigned filter_mask = 0;
    const hid_t space = H5Dget_space(dataset);
    ASSERT_GE(H5Dget_chunk_info(dataset, space, 1, nullptr, &filter_mask, &address, &size), 0);
    ASSERT_GT(size, 72u);
    H5Sclose(space);
    H5Dclose(dataset);
    H5Fclose(file);
  }
  Bytes bytes = read_bytes(version.file);
  for (std::size_t i = address + 8; i < address + 72; ++i) bytes[i] ^= 0x5A;
  write_bytes(version.file, bytes);
  EXPECT_NO_THROW(read_dataset_info(version.file));
  try {
    read_array(version.file, "x");
    FAIL() << "read_array accepted a corrupt chunk";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr(version.file.string() + ": cannot read array 'x'"));
  }
}

TEST(DatasetStore, FilesThatAreNotDatasetsAreNamed) {
  ScratchDir registry;
  EXPECT_THROW(read_dataset_info(registry / "absent.h5"), DataError);
  const hid_t plain =
      H5Fcreate((registry / "plain.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(plain);
  try {
    read_dataset_info(registry / "plain.h5");
    FAIL() << "a plain HDF5 file was taken for a dataset";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("plain.h5: not a kiln dataset (no kiln.format attribute)"));
  }
}

TEST(DatasetStore, DamagedVersionIsRepairedByPuttingTheSameData) {
  ScratchDir registry;
  DatasetStore store(registry.path());
  const DatasetVersion version = store.put("t", images_and_labels(15), {});
  write_bytes(version.file, Bytes(10, 0));
  const DatasetVersion again = store.put("t", images_and_labels(15), {});
  EXPECT_EQ(again.id, version.id);
  EXPECT_EQ(read_array(again.file, "y").bytes, images_and_labels(15)[1].bytes);
}

}  // namespace
}  // namespace kiln::data
