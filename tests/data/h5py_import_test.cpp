// HDF5 files as h5py writes them, imported by path and read back with h5py: nested
// groups, every dtype kiln imports (u16, u32, u64 and bool converted), chunked and
// contiguous layouts, gzip, szip and LZF (LZF through Debian's hdf5-plugin-lzf).
// Then what is refused, each with one error naming the file and the array.
#include <kiln/data/dataset.h>
#include <kiln/data/import.h>
#include <kiln/error.h>

#include "data/data_test_support.h"
#include "formats/python_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ScopedEnv;

// Writes source.h5 with h5py: 40 rows in every array, in nested groups.
constexpr const char* kWriteSource = R"(
import sys
import h5py, numpy as np
rng = np.random.default_rng(7)
n = 40
with h5py.File(sys.argv[1], "w") as f:
    train = f.create_group("train")
    train.create_dataset("images", data=rng.integers(0, 256, (n, 4, 4), dtype="u1"),
                         chunks=(8, 4, 4), compression="gzip", compression_opts=6)
    train.create_dataset("labels", data=rng.integers(0, 60000, n, dtype="u2"))  # contiguous
    train.create_dataset("weights", data=rng.standard_normal((n, 3)).astype("f4"),
                         chunks=(16, 3), compression="lzf", shuffle=True)
    f.create_dataset("meta/deep/ids", data=rng.integers(0, 2**63 - 1, n, dtype="u8"),
                     chunks=(10,), compression="szip")
    f.create_dataset("counts", data=rng.integers(0, 2**32 - 1, n, dtype="u4"))
    f.create_dataset("flags", data=rng.integers(0, 2, n).astype(bool))
    f.create_dataset("small", data=rng.integers(-128, 128, (n, 2), dtype="i1"))
    f.create_dataset("half", data=rng.standard_normal((n, 2)).astype("f2"))
    f.create_dataset("wide", data=rng.standard_normal(n), chunks=(40,), compression="gzip")
    f.create_dataset("names", data=np.array([b"a"] * n))
    f.create_dataset("huge", data=np.array([2**63] * n, dtype="u8"))
    f["elsewhere"] = h5py.ExternalLink("other.h5", "/x")
)";

// Compares every array of the version with its source in h5py, values and dtypes.
constexpr const char* kCompare = R"(
import sys, json
import h5py, numpy as np
source, version, mapping = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
expected_dtypes = {"x": "uint8", "y": "int32", "w": "float32", "ids": "int64",
                   "counts": "int64", "flags": "uint8", "small": "int8", "half": "float16",
                   "wide": "float64"}
with h5py.File(source, "r") as src, h5py.File(version, "r") as dst:
    assert sorted(dst.keys()) == sorted(mapping), (sorted(dst.keys()), sorted(mapping))
    for name, path in mapping.items():
        a, b = src[path][...], dst[name][...]
        assert b.dtype == np.dtype(expected_dtypes[name]), (name, b.dtype)
        assert a.shape == b.shape, (name, a.shape, b.shape)
        assert np.array_equal(a.astype(b.dtype) if a.dtype == bool else a, b), name
        print(name, path, a.dtype, "->", b.dtype, "equal")
)";

const std::map<std::string, std::string> kArrays = {
    {"x", "/train/images"},    {"y", "/train/labels"}, {"w", "/train/weights"},
    {"ids", "/meta/deep/ids"}, {"counts", "/counts"},  {"flags", "/flags"},
    {"small", "/small"},       {"half", "/half"},      {"wide", "wide"}};

class H5pyImport : public ::testing::Test {
 protected:
  void SetUp() override { KILN_RUN_PYTHON_CHECK(dir_.path(), kWriteSource, {source_.string()}); }

  DatasetVersion import(const std::map<std::string, std::string>& arrays) {
    ImportOptions options;
    options.sources = {source_};
    options.name = "h5py";
    options.arrays.clear();
    for (const auto& [name, path] : arrays) options.arrays.push_back(name + "=" + path);
    DatasetStore store(dir_.path() / "registry");
    return import_dataset(store, options);
  }

  std::string import_error(const std::map<std::string, std::string>& arrays) {
    try {
      import(arrays);
    } catch (const DataError& error) {
      EXPECT_FALSE(fs::exists(dir_.path() / "registry" / "datasets") &&
                   !fs::is_empty(dir_.path() / "registry" / "datasets"))
          << "a failed import left a dataset version";
      return error.what();
    }
    ADD_FAILURE() << "the import did not throw DataError";
    return {};
  }

  testing::ScratchDir dir_;
  fs::path source_ = dir_.path() / "source.h5";
};

TEST_F(H5pyImport, EveryLayoutFilterAndDtypeReadsBackEqualInH5py) {
  const DatasetVersion version = import(kArrays);
  EXPECT_EQ(version.rows(), 40);
  EXPECT_EQ(version.source["arrays"]["x"], "/train/images");
  EXPECT_EQ(version.source["converted_from"],
            nlohmann::json({{"counts", "u32"}, {"flags", "bool"}, {"ids", "u64"}, {"y", "u16"}}));
  nlohmann::json mapping = kArrays;
  mapping["wide"] = "/wide";
  KILN_RUN_PYTHON_CHECK(dir_.path(), kCompare,
                        {source_.string(), version.file.string(), mapping.dump()});
}

TEST_F(H5pyImport, AMissingPathListsTheDatasets) {
  EXPECT_THAT(import_error({{"x", "/train/imagez"}}),
              HasSubstr(source_.string() +
                        ": no array at '/train/imagez' (/train/imagez is missing; it has "
                        "/counts, /flags, /half, /huge, /meta/deep/ids, /names, /small, "
                        "/train/images, /train/labels, /train/weights, /wide)"));
  EXPECT_THAT(import_error({{"x", "/train"}}),
              HasSubstr(source_.string() + ": array '/train' is a group, not an array"));
}

TEST_F(H5pyImport, AnUnsupportedDtypeIsNamed) {
  EXPECT_THAT(import_error({{"x", "/names"}}),
              HasSubstr(source_.string() +
                        ": array '/names' holds string elements (1 bytes each); kiln imports "
                        "numbers"));
  EXPECT_THAT(import_error({{"x", "/huge"}}),
              HasSubstr(source_.string() + ": array '/huge' holds u64 element 0 = "
                                           "9223372036854775808, past 2^63-1"));
}

TEST_F(H5pyImport, ALinkToAnotherFileIsRefused) {
  EXPECT_THAT(import_error({{"x", "/elsewhere"}}),
              HasSubstr(source_.string() +
                        ": array '/elsewhere' is reached through /elsewhere, a link to another "
                        "file"));
}

TEST_F(H5pyImport, AFilterWithoutItsPluginIsNamed) {
  const fs::path empty = dir_.path() / "no-plugins";
  fs::create_directories(empty);
  const ScopedEnv plugins("HDF5_PLUGIN_PATH", empty.c_str());
  EXPECT_THAT(import_error({{"w", "/train/weights"}}),
              HasSubstr(source_.string() +
                        ": array '/train/weights' is compressed with HDF5 filter 32000 (lzf), "
                        "which this libhdf5 cannot load (plugin path: " +
                        empty.string() + "); on Debian, install hdf5-plugin-lzf"));
}

TEST_F(H5pyImport, BadArrayEntriesAreConfigErrors) {
  EXPECT_THROW(import({{"a/b", "/x"}}), ConfigError);
  EXPECT_THROW(import({{"x", ""}}), ConfigError);
}

}  // namespace
}  // namespace kiln::data
