#include <kiln/data/csv.h>
#include <kiln/data/dataset.h>
#include <kiln/data/import.h>
#include <kiln/data/inspect.h>
#include <kiln/error.h>

#include "data/data_test_support.h"
#include "data/npy_support.h"
#include "formats/python_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;
using testing::values_of;

class Csv : public ::testing::Test {
 protected:
  fs::path write(const std::string& text, const std::string& name = "t.csv") {
    kiln::test::write_text(dir_ / name, text);
    return dir_ / name;
  }
  template <class E = DataError>
  std::string error(const std::string& text, const CsvOptions& options = {}) {
    const fs::path file = write(text);
    try {
      read_csv(file, options);
    } catch (const E& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
  }
  std::string at(const std::string& where) const { return (dir_ / "t.csv").string() + where; }
  ScratchDir dir_;
};

TEST_F(Csv, SplitsFeaturesAndAnIntegerLabelColumn) {
  const CsvTable table = read_csv(write("a, label ,b\n1.5,3,-2\n\n+4,0,1e3\n"));
  EXPECT_EQ(table.feature_columns, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(table.x.name, "x");
  EXPECT_EQ(table.x.dtype, DType::F32);
  EXPECT_EQ(table.x.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(values_of<float>(table.x.bytes), (std::vector<float>{1.5f, -2, 4, 1000}));
  EXPECT_EQ(table.y.dtype, DType::I32);
  EXPECT_EQ(values_of<std::int32_t>(table.y.bytes), (std::vector<std::int32_t>{3, 0}));
}

TEST_F(Csv, FractionalLabelsStayFloat) {
  const CsvTable table = read_csv(write("x,y\n1,0.5\n2,1\n"), {.label_column = "y"});
  EXPECT_EQ(table.y.dtype, DType::F32);
  EXPECT_EQ(values_of<float>(table.y.bytes), (std::vector<float>{0.5f, 1}));
}

TEST_F(Csv, NoLabelColumnAskedForGivesOnlyX) {
  const CsvTable table = read_csv(write("\"p0\",\"p1\"\r\n1,2\r\n3,4"), {.label_column = ""});
  EXPECT_EQ(table.feature_columns, (std::vector<std::string>{"p0", "p1"}));
  EXPECT_TRUE(table.y.name.empty());
  EXPECT_EQ(table.x.shape, (std::vector<std::int64_t>{2, 2}));
}

TEST_F(Csv, ReadsGzip) {
  const std::string text = "v,label\n7,1\n";
  testing::write_bytes(dir_ / "t.csv.gz", testing::gzip(testing::Bytes(text.begin(), text.end())));
  EXPECT_EQ(values_of<float>(read_csv(dir_ / "t.csv.gz").x.bytes), std::vector<float>{7});
}

// A gzip bomb: 16 KB that inflate to one 64 MiB line. The reader stops at the
// line cap (1 MiB) instead of holding the whole stream as one line.
TEST_F(Csv, GzipBombLineIsRefusedAtTheLineCap) {
  std::string text = "v,label\n";
  text.append(std::size_t{64} << 20, '1');
  const testing::Bytes packed = testing::gzip(testing::Bytes(text.begin(), text.end()), 9);
  ASSERT_LT(packed.size(), 100'000u);
  testing::write_bytes(dir_ / "bomb.csv.gz", packed);
  try {
    read_csv(dir_ / "bomb.csv.gz");
    ADD_FAILURE() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), (dir_ / "bomb.csv.gz").string() +
                                         ":2: line is longer than 1048576 bytes, the most kiln "
                                         "reads in one line");
  }
}

TEST_F(Csv, LongLinesUnderTheCapAreRead) {
  std::string text = "v,label\n";
  text.append(std::size_t{1} << 19, '0');
  text += ",1\n";
  const CsvTable table = read_csv(write(text));
  EXPECT_EQ(table.x.shape, (std::vector<std::int64_t>{1, 1}));
}

TEST_F(Csv, RaggedRowNamesFileLineAndColumn) {
  EXPECT_EQ(error("a,b,label\n1,2,3\n4,5\n"),
            (dir_ / "t.csv").string() + ":3:4: ragged row: 2 cells, but the header has 3 columns");
  EXPECT_EQ(error("a,b,label\n1,2,3,4\n"),
            (dir_ / "t.csv").string() + ":2:7: ragged row: 4 cells, but the header has 3 columns");
}

TEST_F(Csv, NonNumericCellNamesFileLineColumnAndHeader) {
  EXPECT_EQ(error("a,b,label\n1,2,3\n4, x7 ,5\n"),
            (dir_ / "t.csv").string() + ":3:3: cell 'x7' in column 'b' is not a number");
}

TEST_F(Csv, MissingLabelColumnListsTheColumns) {
  EXPECT_EQ(
      error("a,b\n1,2\n", {.label_column = "class"}),
      (dir_ / "t.csv").string() + ":1:1: no label column 'class' in the header (columns: a, b)");
}

TEST_F(Csv, EmptyFileIsAnError) {
  EXPECT_THAT(error("\n\n"), ::testing::HasSubstr("empty CSV file"));
}

TEST_F(Csv, QuotedFieldsHoldDelimitersDoubledQuotesAndLineBreaks) {
  const CsvTable table = read_csv(write("id,\"a\",\"b, \"\"quoted\"\"\",label\r\n"
                                        "\"row, one\",1.5, \"2\" ,0\r\n"
                                        "\"two\r\nlines, \"\"and\"\" more\",3,4,1\n"),
                                  {.ignored_columns = {"id"}});
  EXPECT_EQ(table.feature_columns, (std::vector<std::string>{"a", "b, \"quoted\""}));
  EXPECT_EQ(table.x.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(values_of<float>(table.x.bytes), (std::vector<float>{1.5f, 2, 3, 4}));
  EXPECT_EQ(values_of<std::int32_t>(table.y.bytes), (std::vector<std::int32_t>{0, 1}));
}

TEST_F(Csv, CrlfAndLfGiveTheSameTable) {
  const CsvTable lf = read_csv(write("a,label\n1,0\n\"2\",1\n", "lf.csv"));
  const CsvTable crlf = read_csv(write("a,label\r\n1,0\r\n\"2\",1\r\n", "crlf.csv"));
  EXPECT_EQ(lf.x.bytes, crlf.x.bytes);
  EXPECT_EQ(lf.y.bytes, crlf.y.bytes);
  EXPECT_EQ(values_of<float>(lf.x.bytes), (std::vector<float>{1, 2}));
}

TEST_F(Csv, AChosenDelimiterSplitsTheFields) {
  const CsvTable semicolon = read_csv(write("a;label;b\n1.5;0;\"2;5\"\n", "s.csv"),
                                      {.delimiter = ';', .ignored_columns = {"b"}});
  EXPECT_EQ(values_of<float>(semicolon.x.bytes), (std::vector<float>{1.5f}));
  // With tabs as delimiters, a tab is not space to trim: "1\t\t0" has an empty b.
  const CsvTable tabs =
      read_csv(write("a\tb\tlabel\n1\t\t0\n 2 \t3\t1\n", "t.tsv"), {.delimiter = '\t'});
  EXPECT_EQ(tabs.feature_columns, (std::vector<std::string>{"a", "b"}));
  const auto x = values_of<float>(tabs.x.bytes);
  ASSERT_EQ(x.size(), 4u);
  EXPECT_EQ(x[0], 1);
  EXPECT_TRUE(std::isnan(x[1]));
  EXPECT_EQ(x[2], 2);
  EXPECT_EQ(x[3], 3);
  EXPECT_EQ(tabs.missing, (std::vector<std::int64_t>{0, 1}));
}

TEST_F(Csv, WithoutAHeaderColumnsAreNamedByIndex) {
  const CsvTable table = read_csv(write("1,2,0\n3,4,1\n"), {.header = false, .label_column = "2"});
  EXPECT_EQ(table.feature_columns, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(values_of<float>(table.x.bytes), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(values_of<std::int32_t>(table.y.bytes), (std::vector<std::int32_t>{0, 1}));
}

TEST_F(Csv, ExplicitFeaturesComeInTheirOrderAndTheOtherColumnsAreDropped) {
  const CsvTable table = read_csv(write("a,b,c,label,name\n1,2,3,0,Ann\n4,5,6,1,Bo\n"),
                                  {.feature_columns = {"c", "a"}});
  EXPECT_EQ(table.feature_columns, (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(values_of<float>(table.x.bytes), (std::vector<float>{3, 1, 6, 4}));
}

TEST_F(Csv, EmptyAndNanCellsAreMissingAndCounted) {
  const CsvTable table = read_csv(write("a,b,label\n,nan,0\n1,NaN,1\n \"\" ,inf,2\n"));
  const auto x = values_of<float>(table.x.bytes);
  ASSERT_EQ(x.size(), 6u);
  EXPECT_TRUE(std::isnan(x[0]) && std::isnan(x[1]) && std::isnan(x[3]) && std::isnan(x[4]));
  EXPECT_EQ(x[2], 1);
  EXPECT_TRUE(std::isinf(x[5]));  // infinity is a number, for validation to judge
  EXPECT_EQ(table.missing, (std::vector<std::int64_t>{2, 2}));
}

TEST_F(Csv, EmptyLabelIsAnError) {
  EXPECT_EQ(error("a,label\n1,0\n2, \n"),
            at(":3:3: the label in column 'label' is empty (every row needs one)"));
}

TEST_F(Csv, ErrorsInAMultiLineRecordNameTheLineOfTheCell) {
  EXPECT_EQ(error("id,a,label\n\"x\ny\",zz,1\n", {.ignored_columns = {"id"}}),
            at(":3:4: cell 'zz' in column 'a' is not a number"));
  EXPECT_EQ(error("id,a,label\n\"x\ny\",1\n", {.ignored_columns = {"id"}}),
            at(":3:5: ragged row: 2 cells, but the header has 3 columns"));
}

TEST_F(Csv, RaggedRowWithoutAHeaderIsMeasuredAgainstTheFirstRow) {
  EXPECT_EQ(error("1,2,0\n3,1\n", {.header = false, .label_column = "2"}),
            at(":2:4: ragged row: 2 cells, but the first row has 3 columns"));
}

TEST_F(Csv, UnclosedQuoteNamesWhereItOpens) {
  EXPECT_EQ(error("a,label\n1, \"0\n2,1\n"),
            at(":2:4: the quoted field that starts here is not closed"));
}

TEST_F(Csv, TextAfterAClosingQuoteIsAnError) {
  EXPECT_EQ(error("a,label\n\"1\"x,0\n"),
            at(":2:4: 'x' after the closing quote of the field that starts at 2:1 (a quote inside "
               "a quoted field is written twice: \"\")"));
}

// A quoted field may span lines, but the record is capped like a line: an open
// quote does not make the reader hold the rest of the file.
TEST_F(Csv, ARecordOverLinesIsCappedLikeALine) {
  std::string text = "a,label\n\"" + std::string(99'999, '1') + "\n";
  for (int line = 0; line < 20; ++line) text += std::string(100'000, '1') + "\n";
  EXPECT_EQ(error(text), at(":12:1: the record that starts on line 2 is longer than 1048576 "
                            "bytes, the most kiln reads in one record (is a quote not closed?)"));
}

TEST_F(Csv, NamedColumnsTheFileLacksListItsColumns) {
  EXPECT_EQ(error("a,b,label\n1,2,0\n", {.feature_columns = {"z"}}),
            at(":1:1: no feature column 'z' in the header (columns: a, b, label)"));
  EXPECT_EQ(error("a,b,label\n1,2,0\n", {.ignored_columns = {"id"}}),
            at(":1:1: no ignored column 'id' in the header (columns: a, b, label)"));
  EXPECT_EQ(error("\n1,2\n", {.header = false}),
            at(":2:1: no label column 'label': without a header, the columns are named by "
               "number (0, 1)"));
}

TEST_F(Csv, AColumnNamedTwiceCannotBeChosen) {
  EXPECT_EQ(error("a,a,label\n1,2,0\n", {.feature_columns = {"a"}}),
            at(":1:1: the header names 2 columns 'a' (columns 1, 2); the feature column must be "
               "named once"));
  // Unchosen, such columns are read as features like any other.
  EXPECT_EQ(read_csv(write("a,a,label\n1,2,0\n")).x.shape, (std::vector<std::int64_t>{1, 2}));
}

TEST_F(Csv, ContradictoryOptionsAreConfigErrors) {
  const std::string text = "a,b,label\n1,2,0\n";
  EXPECT_EQ(error<ConfigError>(text, {.feature_columns = {"a"}, .ignored_columns = {"a"}}),
            "CSV: column 'a' is both a feature and ignored");
  EXPECT_EQ(error<ConfigError>(text, {.feature_columns = {"a", "label"}}),
            "CSV: column 'label' is the label; it cannot also be a feature or ignored");
  EXPECT_EQ(error<ConfigError>(text, {.ignored_columns = {"b", "b"}}),
            "CSV: column 'b' is listed twice");
  EXPECT_EQ(error<ConfigError>(text, {.delimiter = '"'}),
            "CSV: the delimiter cannot be a quote or a line break");
}

// A categorical column holds each cell's index among the column's sorted names, so
// the same rows in another order give the same codes; an empty cell is missing.
TEST_F(Csv, CategoricalColumnsAreCodedByTheirSortedNames) {
  const CsvTable table =
      read_csv(write("city,size,label\n\"Paris, TX\",1,0\nLima,2,1\n,3,0\nAthens,4,1\nLima,5,0\n"),
               {.categorical_columns = {"city"}});
  EXPECT_EQ(table.feature_columns, (std::vector<std::string>{"city", "size"}));
  EXPECT_EQ(table.categories.at("city"), (std::vector<std::string>{"Athens", "Lima", "Paris, TX"}));
  const std::vector<float> x = values_of<float>(table.x.bytes);
  ASSERT_EQ(x.size(), 10u);
  EXPECT_EQ(x[0], 2.0f);
  EXPECT_EQ(x[2], 1.0f);
  EXPECT_TRUE(std::isnan(x[4]));
  EXPECT_EQ(x[6], 0.0f);
  EXPECT_EQ(x[8], 1.0f);
  EXPECT_EQ(table.missing, (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(table.categories.size(), 1u);  // size is a number
}

TEST_F(Csv, CategoricalOptionsThatContradictAreConfigErrors) {
  const std::string text = "a,b,label\nx,2,0\n";
  EXPECT_EQ(error<ConfigError>(text, {.ignored_columns = {"a"}, .categorical_columns = {"a"}}),
            "CSV: column 'a' is both categorical and ignored");
  EXPECT_EQ(error<ConfigError>(text, {.categorical_columns = {"label"}}),
            "CSV: column 'label' is the label; it cannot also be a feature or ignored");
  EXPECT_EQ(error<ConfigError>(text, {.feature_columns = {"b"}, .categorical_columns = {"a"}}),
            "CSV: categorical column 'a' is not among the feature columns (b)");
  EXPECT_EQ(error(text, {.categorical_columns = {"c"}}),
            at(":1:1: no categorical column 'c' in the header (columns: a, b, label)"));
  // Without the option, text is not a number.
  EXPECT_EQ(error(text), at(":2:1: cell 'x' in column 'a' is not a number"));
}

TEST_F(Csv, ACategoricalColumnOfMoreThan65536NamesIsRefused) {
  std::string text = "id,label\n";
  for (int i = 0; i <= 65536; ++i) text += "u" + std::to_string(i) + ",0\n";
  EXPECT_THAT(error(text, {.categorical_columns = {"id"}}),
              ::testing::HasSubstr(":65538:1: categorical column 'id' has more than 65536 "
                                   "distinct values"));
}

// The import records the categories in the version's source.
TEST_F(Csv, ImportRecordsTheCategories) {
  DatasetStore store(dir_ / "registry");
  const DatasetVersion imported =
      import_dataset(store, {.sources = {write("kind,v,label\nb,1,0\na,2,1\n")},
                             .name = "csv",
                             .categorical_columns = {"kind"}});
  EXPECT_EQ(imported.source["categories"], (nlohmann::json{{"kind", {"a", "b"}}}));
  // The same codes over other names are other data: another id, its own names.
  const DatasetVersion renamed =
      import_dataset(store, {.sources = {write("kind,v,label\nd,1,0\nc,2,1\n", "r.csv")},
                             .name = "renamed",
                             .categorical_columns = {"kind"}});
  EXPECT_NE(renamed.id, imported.id);
  EXPECT_EQ(renamed.source["categories"], (nlohmann::json{{"kind", {"c", "d"}}}));
  const Verification verified = verify_dataset(renamed.file);
  EXPECT_EQ(verified.actual_id, renamed.id);
  EXPECT_EQ(verified.recorded_id, renamed.id);
  const DatasetVersion plain =
      import_dataset(store, {.sources = {write("v,label\n1,0\n", "p.csv")}, .name = "plain"});
  EXPECT_FALSE(plain.source.contains("categories"));
}

// A plain numeric CSV imports as it always did: f32 features, i32 labels, and so
// the version's content id is that of those arrays put directly.
TEST_F(Csv, PlainNumericCsvKeepsItsArraysAndContentId) {
  DatasetStore store(dir_ / "registry");
  const DatasetVersion imported =
      import_dataset(store, {.sources = {write("a,b,label\n1.5,-2,3\n4,1e3,0\n")}, .name = "csv"});
  const Array x = testing::make_array(
      "x", DType::F32, {2, 2}, testing::little_endian(std::vector<float>{1.5f, -2, 4, 1000}));
  const Array y = testing::make_array("y", DType::I32, {2},
                                      testing::little_endian(std::vector<std::int32_t>{3, 0}));
  EXPECT_EQ(imported.id, content_id({x, y}));
  EXPECT_EQ(imported.source["missing"], nlohmann::json::object());
}

// Python's csv module writes the files (RFC 4180 quoting, a ';' and a tab delimiter,
// CRLF, no header), kiln imports them, and h5py reads the versions back equal to
// what numpy computed, NaN for the missing cells.
TEST_F(Csv, FilesFromPythonsCsvModuleImportAsH5pyReadsThem) {
  KILN_RUN_PYTHON_CHECK(dir_.path(), R"(
import csv, sys, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(7)
f1 = rng.normal(size=8).astype(np.float32)
f2 = rng.normal(scale=1e4, size=8).astype(np.float32)
f2[[1, 5]] = np.nan
labels = rng.integers(0, 3, size=8).astype(np.int32)
with open(out + "/a.csv", "w", newline="") as f:
    w = csv.writer(f, delimiter=";", quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
    w.writerow(["id", "f1", "note", "f2", "label"])
    for i in range(8):
        note = 'says "hi";\nthen leaves' if i % 2 else "plain"
        w.writerow([f"r{i}", float(f1[i]), note,
                    "" if np.isnan(f2[i]) else float(f2[i]), int(labels[i])])
with open(out + "/b.tsv", "w", newline="") as f:
    w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_ALL)
    for i in range(8):
        w.writerow(["nan" if np.isnan(f2[i]) else float(f2[i]), int(labels[i]), float(f1[i])])
np.savez(out + "/expected.npz", x_a=np.stack([f1, f2], axis=1), x_b=np.stack([f2, f1], axis=1),
         y=labels)
)",
                        ({dir_.path().string()}));
  DatasetStore store(dir_ / "registry");
  const DatasetVersion a = import_dataset(store, {.sources = {dir_ / "a.csv"},
                                                  .name = "a",
                                                  .delimiter = ";",
                                                  .ignored_columns = {"id", "note"}});
  const DatasetVersion b = import_dataset(store, {.sources = {dir_ / "b.tsv"},
                                                  .name = "b",
                                                  .label_column = "1",
                                                  .delimiter = "tab",
                                                  .header = false});
  EXPECT_EQ(a.source["missing"], nlohmann::json({{"f2", 2}}));
  EXPECT_EQ(a.source["feature_columns"], nlohmann::json({"f1", "f2"}));
  EXPECT_EQ(b.source["missing"], nlohmann::json({{"0", 2}}));
  KILN_RUN_PYTHON_CHECK(dir_.path(), R"(
import sys, h5py, numpy as np
expected = np.load(sys.argv[1])
for path, x in ((sys.argv[2], expected["x_a"]), (sys.argv[3], expected["x_b"])):
    with h5py.File(path, "r") as h:
        assert h["x"].dtype == np.float32 and h["y"].dtype == np.int32, (h["x"].dtype, h["y"].dtype)
        np.testing.assert_array_equal(h["x"][...], x)
        np.testing.assert_array_equal(h["y"][...], expected["y"])
)",
                        ({(dir_ / "expected.npz").string(), a.file.string(), b.file.string()}));
}

}  // namespace
}  // namespace kiln::data
