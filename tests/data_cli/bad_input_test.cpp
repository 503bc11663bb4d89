// Acceptance: each bad input is one clear error line and a non-zero exit, with
// nothing written to the dataset store.
#include "data/npz_support.h"
#include "data_cli/data_cli_fixture.h"

namespace kiln::test {
namespace {

using data::testing::Bytes;
using data::testing::idx_file;
using data::testing::little_endian;
using data::testing::noise;
using data::testing::npy_file;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class BadDataInput : public DataCliTest {
 protected:
  void SetUp() override {
    write("images.idx", idx_file(0x08, {10, 4, 4}, noise(160, 1)));
    write("labels.idx", idx_file(0x08, {10}, Bytes(10, 1)));
  }
};

TEST_F(BadDataInput, TruncatedIdx) {
  write("cut.idx", idx_file(0x08, {10, 4, 4}, noise(100, 1)));
  EXPECT_EQ(import_fails({"cut.idx", "labels.idx", "--name", "t"}),
            "kiln: data error: " + path("cut.idx") +
                ": IDX data too short: header declares shape [10, 4, 4] of u8 (160 bytes of "
                "data) but only 100 follow");
}

TEST_F(BadDataInput, WrongIdxMagic) {
  write("magic.idx", {0x1f, 0x00, 0x08, 0x03, 0, 0, 0, 1});
  EXPECT_THAT(import_fails({"magic.idx", "labels.idx", "--name", "t"}),
              StartsWith("kiln: data error: " + path("magic.idx") +
                         ": not an IDX file (bad magic "
                         "1f 00 08 03"));
}

TEST_F(BadDataInput, IdxImageAndLabelCountsDisagree) {
  write("nine.idx", idx_file(0x08, {9}, Bytes(9, 1)));
  EXPECT_EQ(import_fails({"images.idx", "nine.idx", "--name", "t"}),
            "kiln: data error: " + path("images.idx") + " has 10 rows but " + path("nine.idx") +
                " has 9: data and labels must agree");
}

TEST_F(BadDataInput, IdxZeroExtentBesideAnOverflowingShape) {
  write("hollow.idx", idx_file(0x0E, {0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}));
  EXPECT_EQ(import_fails({"hollow.idx", "--name", "t"}),
            "kiln: data error: " + path("hollow.idx") +
                ": IDX header: shape [0, 4294967295, 4294967295, 4294967295] of 8-byte elements "
                "is impossibly large (more than 2^48 bytes)");
}

TEST_F(BadDataInput, GzipBombCsvStopsAtTheLineCap) {
  std::string text = "v,label\n";
  text.append(std::size_t{64} << 20, '1');
  write("bomb.csv.gz", data::testing::gzip(Bytes(text.begin(), text.end()), 9));
  EXPECT_EQ(import_fails({"bomb.csv.gz", "--name", "t"}),
            "kiln: data error: " + path("bomb.csv.gz") +
                ":2: line is longer than 1048576 bytes, the most kiln reads in one line");
}

TEST_F(BadDataInput, RaggedCsvRow) {
  write_text(dir_ / "t.csv", "a,b,label\n1,2,0\n3,4\n");
  EXPECT_EQ(import_fails({"t.csv", "--name", "t"}),
            "kiln: data error: " + path("t.csv") +
                ":3:4: ragged row: 2 cells, but the header has 3 columns");
}

// A quoted field spanning lines: the error names the line the short row ends on.
TEST_F(BadDataInput, RaggedCsvRowWithAChosenDelimiter) {
  write_text(dir_ / "t.csv", "name;a;label\n\"Ann\nLee\";1;0\n\"Bo\";2\n");
  EXPECT_EQ(import_fails({"t.csv", "--name", "t", "--delimiter", ";", "--ignored", "name"}),
            "kiln: data error: " + path("t.csv") +
                ":4:7: ragged row: 2 cells, but the header has 3 columns");
}

TEST_F(BadDataInput, EmptyCsvLabel) {
  write_text(dir_ / "t.csv", "a,label\n1,\n");
  EXPECT_EQ(import_fails({"t.csv", "--name", "t"}),
            "kiln: data error: " + path("t.csv") +
                ":2:3: the label in column 'label' is empty (every row needs one)");
}

TEST_F(BadDataInput, NpzWithoutTheNamedMember) {
  data::testing::write_zip(dir_ / "a.npz", {{"images.npy", npy_file("|u1", "(1,)", {1})}});
  EXPECT_EQ(import_fails({"a.npz", "--name", "t", "--arrays", "x=images,y=labels"}),
            "kiln: data error: " + path("a.npz") +
                ": no member 'labels' in the archive (members: images)");
}

TEST_F(BadDataInput, NonNumericCsvCell) {
  write_text(dir_ / "t.csv", "a,b,label\n1,two,0\n");
  EXPECT_EQ(
      import_fails({"t.csv", "--name", "t"}),
      "kiln: data error: " + path("t.csv") + ":2:3: cell 'two' in column 'b' is not a number");
}

TEST_F(BadDataInput, NpyBigEndian) {
  write("x.npy", npy_file(">f4", "(2,)", Bytes(8)));
  EXPECT_THAT(import_fails({"x.npy", "--name", "t"}),
              StartsWith("kiln: data error: " + path("x.npy") +
                         ": NPY dtype '>f4' is big-endian; kiln reads little-endian data"));
}

TEST_F(BadDataInput, NpyFortranOrder) {
  write("x.npy", npy_file("<f4", "(2, 2)", Bytes(16), true));
  EXPECT_THAT(import_fails({"x.npy", "--name", "t"}),
              StartsWith("kiln: data error: " + path("x.npy") +
                         ": NPY array is in Fortran order; kiln reads C order"));
}

TEST_F(BadDataInput, Hdf5WithoutTheExpectedArrays) {
  const auto made = kiln({"data", "import", "images.idx", "--name", "images-only"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string file = lines_of(made.out).at(2).substr(std::string("  file: ").size());
  EXPECT_EQ(
      import_fails({file, "--name", "t", "--arrays", "x,labels"}),
      "kiln: data error: " + file + ": no array at '/labels' (/labels is missing; it has /x)");
}

TEST_F(BadDataInput, UsageErrorsExitWithTwo) {
  EXPECT_THAT(import_fails({"images.idx"}, 2), HasSubstr("--name is required"));
  EXPECT_THAT(import_fails({"images.idx", "--name", "t", "--format", "parquet"}, 2),
              HasSubstr("--format parquet: expected auto, idx, csv, npy, npz or hdf5"));
  write_text(dir_ / "t.csv", "a,label\n1,0\n");
  EXPECT_EQ(import_fails({"t.csv", "--name", "t", "--delimiter", "ab"}, 2),
            "kiln: config error: import: delimiter 'ab' is not one character (or \"tab\")");
  EXPECT_EQ(import_fails({"t.csv", "--name", "t", "--features", "a", "--ignored", "a"}, 2),
            "kiln: config error: CSV: column 'a' is both a feature and ignored");
  data::testing::write_zip(dir_ / "a.npz", {{"x.npy", npy_file("|u1", "(1,)", {1})}});
  EXPECT_EQ(import_fails({"a.npz", "--name", "t", "--arrays", "x=images,x"}, 2),
            "kiln: config error: arrays: the name 'x' is given twice");
  EXPECT_THAT(import_fails({"images.idx", "--name", "t", "--parent", "nothing"}, 2),
              HasSubstr("parent 'nothing' is not a stored dataset version"));
  const CommandResult show = kiln({"data", "show", "nothing"});
  EXPECT_EQ(show.exit_code, 2);
  EXPECT_THAT(show.err, HasSubstr("no dataset version 'nothing'"));
}

// A NaN that validation forbids fails the pipeline at the validate stage; the
// import before it is complete and kept, nothing else is left behind.
TEST_F(BadDataInput, NanInDataWhenValidationForbidsIt) {
  std::vector<float> x = {0, 1, 2, 3, 4, 5};
  x[3] = std::numeric_limits<float>::quiet_NaN();
  write("x.npy", npy_file("<f4", "(3, 2)", little_endian(x)));
  write("y.npy", npy_file("<i8", "(3,)", little_endian<std::int64_t>({0, 1, 0})));
  write_text(dir_ / "p.yaml", R"(stages:
  data:
    uses: import
    with: {source: x.npy, labels: y.npy, name: with-nan}
  check:
    uses: validate
    needs: [data]
    with: {allow_nan: false}
)");
  const CommandResult result = kiln({"run", "p.yaml"});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_THAT(lines_of(result.err).back(),
              ::testing::MatchesRegex("kiln: data error: stage 'check' \\(validate\\): dataset "
                                      "[0-9a-f]{12} \\(.*\\) failed validation: nan: array 'x' "
                                      "holds 1 NaN and 0 Inf values \\(first in row 1\\)"));
  EXPECT_EQ(stored_versions(), 1u);
  EXPECT_THAT(leftovers(), ::testing::IsEmpty());
  EXPECT_TRUE(std::filesystem::is_empty(registry() / "stages" / ".work"));
}

}  // namespace
}  // namespace kiln::test
