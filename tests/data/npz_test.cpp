// NPZ archives: numpy's own savez and savez_compressed files imported and read back
// equal by h5py, the choice of members, and each bad archive as one error naming
// the file and the member. Archives for the error cases are written with libzip
// (data/npz_support.h).
#include <kiln/data/array_choice.h>
#include <kiln/data/import.h>
#include <kiln/data/npz.h>
#include <kiln/error.h>

#include "data/data_test_support.h"
#include "data/npy_support.h"
#include "data/npz_support.h"
#include "formats/python_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;
using testing::little_endian;
using testing::npy_file;
using testing::write_zip;
using Member = testing::ZipMember;
using ::testing::HasSubstr;

Bytes images_npy() { return npy_file("|u1", "(3, 2)", {1, 2, 3, 4, 5, 6}); }
Bytes labels_npy() {
  return npy_file("<i8", "(3,)", little_endian(std::vector<std::int64_t>{0, 1, 2}));
}

class Npz : public ::testing::Test {
 protected:
  fs::path archive(const std::string& name, const std::vector<Member>& members,
                   bool deflate = true) {
    write_zip(dir_ / name, members, deflate);
    return dir_ / name;
  }
  template <class E = DataError>
  std::string error(const fs::path& file, std::vector<std::string> arrays = {"x", "y"}) {
    ImportOptions options;
    options.sources = {file};
    options.name = "t";
    options.arrays = std::move(arrays);
    try {
      import_dataset(store_, options);
    } catch (const E& e) {
      EXPECT_TRUE(store_.list().empty()) << "a version was written";
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
  }
  testing::ScratchDir dir_;
  DatasetStore store_{dir_ / "registry"};
};

// numpy writes the archives: savez (stored) with x and y, savez_compressed
// (deflated) with other names, savez with positional arrays (arr_0, arr_1). Each
// imports; h5py reads every version back equal to np.load of its archive; and the
// NPZ gives the same version as the same arrays saved as .npy files.
TEST_F(Npz, NumpysArchivesImportAndReadBackEqualInH5py) {
  KILN_RUN_PYTHON_CHECK(dir_.path(), R"(
import sys, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(3)
x = rng.integers(0, 256, size=(6, 4, 4), dtype=np.uint8)
y = rng.integers(0, 10, size=6).astype(np.int64)
np.savez(out + "/plain.npz", x=x, y=y)
np.save(out + "/x.npy", x)
np.save(out + "/y.npy", y)
images = rng.normal(size=(5, 3)).astype(np.float32)
labels = rng.integers(0, 2, size=5).astype(np.int32)
np.savez_compressed(out + "/packed.npz", images=images, labels=labels,
                    other=np.arange(7, dtype=np.float64))
np.savez(out + "/positional.npz", np.arange(12, dtype=np.float64).reshape(4, 3),
         np.arange(4, dtype=np.int64))
)",
                        ({dir_.path().string()}));
  const DatasetVersion plain =
      import_dataset(store_, {.sources = {dir_ / "plain.npz"}, .name = "p"});
  const DatasetVersion npy =
      import_dataset(store_, {.sources = {dir_ / "x.npy", dir_ / "y.npy"}, .name = "n"});
  EXPECT_EQ(plain.id, npy.id);
  const DatasetVersion packed = import_dataset(
      store_, {.sources = {dir_ / "packed.npz"}, .name = "c", .arrays = {"x=images", "y=labels"}});
  EXPECT_EQ(packed.source["format"], "npz");
  EXPECT_EQ(packed.source["arrays"], nlohmann::json({{"x", "images.npy"}, {"y", "labels.npy"}}));
  const DatasetVersion positional =
      import_dataset(store_, {.sources = {dir_ / "positional.npz"},
                              .name = "a",
                              .arrays = {"x=arr_0", "y=arr_1.npy", "z=arr_0"}});
  EXPECT_EQ(read_array(positional.file, "z").shape, (std::vector<std::int64_t>{4, 3}));
  KILN_RUN_PYTHON_CHECK(
      dir_.path(), R"(
import sys, h5py, numpy as np
for version, archive, names in zip(sys.argv[1::3], sys.argv[2::3], sys.argv[3::3]):
    source = np.load(archive)
    with h5py.File(version, "r") as h:
        for pair in names.split(","):
            name, member = pair.split("=")
            assert h[name].dtype == source[member].dtype, (version, name, h[name].dtype)
            np.testing.assert_array_equal(h[name][...], source[member])
)",
      ({plain.file.string(), (dir_ / "plain.npz").string(), "x=x,y=y", packed.file.string(),
        (dir_ / "packed.npz").string(), "x=images,y=labels", positional.file.string(),
        (dir_ / "positional.npz").string(), "x=arr_0,y=arr_1,z=arr_0"}));
}

TEST_F(Npz, StoredAndDeflatedMembersReadAlike) {
  const std::vector<Member> members = {{"x.npy", images_npy()}, {"y.npy", labels_npy()}};
  const auto stored = read_npz(archive("s.npz", members, false), {{"x", "x"}, {"y", "y"}});
  const auto deflated = read_npz(archive("d.npz", members, true), {{"x", "x"}, {"y", "y"}});
  ASSERT_EQ(stored.size(), 2u);
  ASSERT_EQ(deflated.size(), 2u);
  EXPECT_EQ(stored[0].array.bytes, (Bytes{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(stored[0].array.shape, (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(stored[1].array.dtype, DType::I64);
  EXPECT_EQ(stored[1].member, "y.npy");
  for (std::size_t i = 0; i < 2; ++i) EXPECT_EQ(stored[i].array.bytes, deflated[i].array.bytes);
}

TEST_F(Npz, DetectedByContentAndByName) {
  archive("data.bin", {{"x.npy", images_npy()}});
  EXPECT_EQ(detect_format(dir_ / "data.bin"), SourceFormat::Npz);
  kiln::test::write_text(dir_ / "damaged.npz", "not a zip at all");
  EXPECT_EQ(detect_format(dir_ / "damaged.npz"), SourceFormat::Npz);
  testing::write_bytes(dir_ / "empty.bin",
                       Bytes{'P', 'K', 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(detect_format(dir_ / "empty.bin"), SourceFormat::Npz);
}

TEST_F(Npz, MissingMemberListsTheMembers) {
  const fs::path file = archive("a.npz", {{"x.npy", images_npy()}, {"labels.npy", labels_npy()}});
  EXPECT_EQ(error(file), file.string() + ": no member 'y' in the archive (members: x, labels)");
  testing::write_bytes(dir_ / "empty.npz",
                       Bytes{'P', 'K', 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(error(dir_ / "empty.npz"),
            (dir_ / "empty.npz").string() + ": no member 'x' in the archive (members: none)");
}

TEST_F(Npz, MemberThatIsNotValidNpyIsNamed) {
  const std::string text = "these bytes are no array";
  const fs::path file =
      archive("a.npz", {{"x.npy", Bytes(text.begin(), text.end())}, {"y.npy", labels_npy()}});
  EXPECT_EQ(error(file),
            file.string() + ": member 'x.npy': not an NPY file (the magic \\x93NUMPY is missing)");
  const fs::path bools =
      archive("b.npz", {{"x.npy", images_npy()}, {"y.npy", npy_file("|b1", "(3,)", {1, 0, 1})}});
  EXPECT_EQ(error(bools), bools.string() +
                              ": member 'y.npy': NPY dtype '|b1' is not one kiln reads (u1, i4, "
                              "i8, f4, f8, little-endian)");
  const fs::path cut = archive("c.npz", {{"x.npy", npy_file("|u1", "(3, 2)", {1, 2, 3})}});
  EXPECT_EQ(error(cut, {"x"}), cut.string() +
                                   ": member 'x.npy': NPY data too short: shape [3, 2] of u8 "
                                   "needs 6 bytes, 3 follow");
}

TEST_F(Npz, MembersThatDisagreeOnRowsAreRefused) {
  const fs::path file =
      archive("a.npz",
              {{"x.npy", images_npy()},
               {"y.npy", npy_file("<i8", "(2,)", little_endian(std::vector<std::int64_t>{0, 1}))}});
  EXPECT_EQ(error(file), file.string() +
                             ": member 'y.npy' has 2 rows but member 'x.npy' has 3: the arrays "
                             "must agree on rows");
}

TEST_F(Npz, DamagedArchivesAreOneError) {
  const fs::path file = archive("a.npz", {{"x.npy", images_npy()}, {"y.npy", labels_npy()}});
  Bytes bytes = testing::read_bytes(file);
  // Cut off the end of central directory record: no longer a zip archive.
  testing::write_bytes(dir_ / "cut.npz", Bytes(bytes.begin(), bytes.end() - 30));
  EXPECT_EQ(error(dir_ / "cut.npz"), (dir_ / "cut.npz").string() +
                                         ": not a zip archive kiln can read (libzip: Not a zip "
                                         "archive)");
  // Damage the deflated data of the first member (after its 30-byte local header,
  // name and extra field): the inflate or the CRC check fails on reading it.
  const std::size_t data = 30 + (bytes[26] | bytes[27] << 8) + (bytes[28] | bytes[29] << 8);
  for (std::size_t i = data; i < data + 8; ++i) bytes[i] ^= 0x5a;
  testing::write_bytes(dir_ / "flipped.npz", bytes);
  EXPECT_THAT(error(dir_ / "flipped.npz"), HasSubstr((dir_ / "flipped.npz").string() +
                                                     ": member 'x.npy': damaged member (libzip: "));
  kiln::test::write_text(dir_ / "text.npz", "not a zip at all");
  EXPECT_EQ(error(dir_ / "text.npz"), (dir_ / "text.npz").string() +
                                          ": not a zip archive kiln can read (libzip: Not a zip "
                                          "archive)");
}

TEST_F(Npz, ArrayChoicesAreCheckedBeforeReading) {
  EXPECT_EQ(parse_array_choices({"x", "y=labels"}).at(1).member, "labels");
  EXPECT_EQ(parse_array_choices({"x"}).at(0).member, "x");
  const auto fails = [](std::vector<std::string> entries) {
    try {
      parse_array_choices(entries);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no ConfigError");
  };
  EXPECT_EQ(fails({}), "arrays: name at least one array to import");
  EXPECT_EQ(fails({"x="}), "arrays: 'x=' is not NAME or NAME=MEMBER (both non-empty)");
  EXPECT_EQ(fails({"=images"}), "arrays: '=images' is not NAME or NAME=MEMBER (both non-empty)");
  EXPECT_EQ(fails({"a/b=images"}),
            "arrays: 'a/b' cannot name an array of a dataset version (no '/', not '.')");
  EXPECT_EQ(fails({"x=a", "x=b"}), "arrays: the name 'x' is given twice");
  const fs::path file = archive("a.npz", {{"x.npy", images_npy()}});
  EXPECT_EQ(error<ConfigError>(file, {"x=x", "x"}), "arrays: the name 'x' is given twice");
}

TEST_F(Npz, AnNpzIsImportedOnItsOwn) {
  const fs::path file = archive("a.npz", {{"x.npy", images_npy()}});
  try {
    import_dataset(store_, {.sources = {file, file}, .name = "t"});
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("a npz source is imported on its own, but 2 files were given"));
  }
}

}  // namespace
}  // namespace kiln::data
