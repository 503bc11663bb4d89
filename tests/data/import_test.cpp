// import_dataset: each source format, the pairing rules, and that a bad source
// writes nothing.
#include <kiln/data/import.h>
#include <kiln/error.h>
#include <kiln/hash.h>

#include "data/data_test_support.h"
#include "data/npy_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;
using testing::gzip;
using ::testing::HasSubstr;
using testing::idx_file;
using testing::noise;
using testing::npy_file;

class Import : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_bytes(dir_ / "images.idx", idx_file(0x08, {6, 4, 4}, noise(96, 3)));
    testing::write_bytes(dir_ / "labels.idx", idx_file(0x08, {6}, {0, 1, 2, 0, 1, 2}));
  }
  DatasetVersion import(std::vector<fs::path> sources, ImportOptions options = {}) {
    options.sources = std::move(sources);
    if (options.name.empty()) options.name = "t";
    return import_dataset(store_, options);
  }
  template <class E = DataError>
  std::string error(std::vector<fs::path> sources, ImportOptions options = {}) {
    const std::size_t before = store_.list().size();
    try {
      import(std::move(sources), std::move(options));
    } catch (const E& e) {
      EXPECT_EQ(store_.list().size(), before) << "a version was written";
      std::error_code ec;
      for (fs::directory_iterator it(store_.directory(), ec), end; !ec && it != end; ++it)
        EXPECT_FALSE(it->path().filename().string().starts_with(".tmp-")) << it->path();
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
  }
  testing::ScratchDir dir_;
  DatasetStore store_{dir_ / "registry"};
};

TEST_F(Import, DetectsFormatsFromContent) {
  testing::write_bytes(dir_ / "a.npy", npy_file("|u1", "(1,)", {1}));
  kiln::test::write_text(dir_ / "a.txt", "a,b\n1,2\n");
  const DatasetVersion version = import({dir_ / "images.idx"});
  EXPECT_EQ(detect_format(dir_ / "images.idx"), SourceFormat::Idx);
  EXPECT_EQ(detect_format(dir_ / "a.npy"), SourceFormat::Npy);
  EXPECT_EQ(detect_format(dir_ / "a.txt"), SourceFormat::Csv);
  EXPECT_EQ(detect_format(version.file), SourceFormat::Hdf5);
  testing::write_bytes(dir_ / "images.gz", gzip(testing::read_bytes(dir_ / "images.idx")));
  EXPECT_EQ(detect_format(dir_ / "images.gz"), SourceFormat::Idx);
}

TEST_F(Import, GzipAndPlainIdxGiveTheSameVersion) {
  testing::write_bytes(dir_ / "images.gz", gzip(testing::read_bytes(dir_ / "images.idx")));
  const DatasetVersion plain = import({dir_ / "images.idx", dir_ / "labels.idx"});
  const DatasetVersion zipped = import({dir_ / "images.gz", dir_ / "labels.idx"});
  EXPECT_EQ(plain.id, zipped.id);
  EXPECT_EQ(store_.list().size(), 1u);
}

TEST_F(Import, RecordsSourcesWithTheirHashesAndTheParent) {
  const DatasetVersion first = import({dir_ / "images.idx"});
  ImportOptions options;
  options.parent = "t";
  options.name = "second";
  const DatasetVersion second = import({dir_ / "images.idx", dir_ / "labels.idx"}, options);
  EXPECT_EQ(second.parent, first.id);
  EXPECT_EQ(second.source["files"][1]["sha256"], sha256_file(dir_ / "labels.idx"));
  EXPECT_EQ(second.source["files"][0]["format"], "idx");
  options.parent = "nothing-like-this";
  EXPECT_THAT(error<ConfigError>({dir_ / "images.idx"}, options),
              HasSubstr("parent 'nothing-like-this' is not a stored dataset version"));
}

TEST_F(Import, NpyDataWithIdxLabelsIsOnePair) {
  testing::write_bytes(dir_ / "x.npy", npy_file("|u1", "(6, 16)", noise(96, 3)));
  const DatasetVersion npy = import({dir_ / "x.npy", dir_ / "labels.idx"});
  EXPECT_EQ(read_array(npy.file, "x").shape, (std::vector<std::int64_t>{6, 16}));
  EXPECT_EQ(read_array(npy.file, "y").bytes, (Bytes{0, 1, 2, 0, 1, 2}));
}

TEST_F(Import, Hdf5CopiesTheNamedArrays) {
  const DatasetVersion source = import({dir_ / "images.idx", dir_ / "labels.idx"});
  ImportOptions options;
  options.arrays = {"y"};
  options.name = "labels-only";
  const DatasetVersion copy = import({source.file}, options);
  ASSERT_EQ(copy.arrays.size(), 1u);
  EXPECT_EQ(copy.arrays[0].name, "y");
  EXPECT_EQ(copy.source["arrays"], nlohmann::json({{"y", "/y"}}));
}

TEST_F(Import, Hdf5WithoutTheExpectedArraysNamesWhatItHas) {
  testing::ScratchDir other;
  Array images = testing::make_array("images", DType::U8, {2, 2}, {1, 2, 3, 4});
  const DatasetVersion foreign = DatasetStore(other.path()).put("foreign", {images}, {});
  EXPECT_THAT(
      error({foreign.file}),
      HasSubstr(foreign.file.string() + ": no array at '/x' (/x is missing; it has /images)"));
}

TEST_F(Import, BadIdxInputsWriteNothing) {
  testing::write_bytes(dir_ / "short.idx", idx_file(0x08, {6, 4, 4}, noise(90, 3)));
  EXPECT_THAT(error({dir_ / "short.idx", dir_ / "labels.idx"}), HasSubstr("IDX data too short"));
  testing::write_bytes(dir_ / "magic.idx", {1, 2, 8, 1, 0, 0, 0, 1, 5});
  EXPECT_THAT(error({dir_ / "magic.idx"}, {.format = SourceFormat::Idx}),
              HasSubstr("not an IDX file (bad magic 01 02 08 01"));
  testing::write_bytes(dir_ / "five.idx", idx_file(0x08, {5}, {0, 1, 2, 0, 1}));
  EXPECT_THAT(error({dir_ / "images.idx", dir_ / "five.idx"}),
              HasSubstr("images.idx has 6 rows but " + (dir_ / "five.idx").string() + " has 5"));
}

// Options of another format would be ignored without a word: they are refused.
TEST_F(Import, OptionsOfAnotherFormatAreUsageErrors) {
  const fs::path images = dir_ / "images.idx", labels = dir_ / "labels.idx";
  EXPECT_EQ(error<ConfigError>({images, labels}, {.label_column = "target", .header = false}),
            "import: label_column (--label), header (--no-header) apply to CSV tables only; " +
                images.string() + " is idx");
  EXPECT_EQ(error<ConfigError>({images, labels}, {.categorical_columns = {"city"}}),
            "import: categorical_columns (--categorical) applies to CSV tables only; " +
                images.string() + " is idx");
  kiln::test::write_text(dir_ / "t.csv", "a,label\n1,0\n");
  EXPECT_EQ(error<ConfigError>({dir_ / "t.csv"}, {.arrays = {"x=/a"}}),
            "import: arrays (--arrays) applies to NPZ and HDF5 only; " + (dir_ / "t.csv").string() +
                " is csv");
}

TEST_F(Import, ArrangementErrorsAreUsageErrors) {
  kiln::test::write_text(dir_ / "t.csv", "a,label\n1,0\n");
  EXPECT_THAT(error<ConfigError>({dir_ / "t.csv", dir_ / "labels.idx"}),
              HasSubstr("a csv source is imported on its own"));
  EXPECT_THAT(error<ConfigError>({dir_ / "images.idx", dir_ / "labels.idx", dir_ / "labels.idx"}),
              HasSubstr("3 files given"));
  EXPECT_THAT(error({dir_ / "missing.idx"}), HasSubstr("missing.idx: no such file"));
}

}  // namespace
}  // namespace kiln::data
