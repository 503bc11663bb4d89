#include <kiln/data/csv.h>
#include <kiln/error.h>

#include "data/data_test_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  std::string error(const std::string& text, const std::string& label = "label") {
    const fs::path file = write(text);
    try {
      read_csv(file, label);
    } catch (const DataError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no DataError";
    return {};
  }
  ScratchDir dir_;
};

TEST_F(Csv, SplitsFeaturesAndAnIntegerLabelColumn) {
  const CsvTable table = read_csv(write("a, label ,b\n1.5,3,-2\n\n+4,0,1e3\n"), "label");
  EXPECT_EQ(table.feature_columns, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(table.x.name, "x");
  EXPECT_EQ(table.x.dtype, DType::F32);
  EXPECT_EQ(table.x.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(values_of<float>(table.x.bytes), (std::vector<float>{1.5f, -2, 4, 1000}));
  EXPECT_EQ(table.y.dtype, DType::I32);
  EXPECT_EQ(values_of<std::int32_t>(table.y.bytes), (std::vector<std::int32_t>{3, 0}));
}

TEST_F(Csv, FractionalLabelsStayFloat) {
  const CsvTable table = read_csv(write("x,y\n1,0.5\n2,1\n"), "y");
  EXPECT_EQ(table.y.dtype, DType::F32);
  EXPECT_EQ(values_of<float>(table.y.bytes), (std::vector<float>{0.5f, 1}));
}

TEST_F(Csv, NoLabelColumnAskedForGivesOnlyX) {
  const CsvTable table = read_csv(write("\"p0\",\"p1\"\r\n1,2\r\n3,4"), "");
  EXPECT_EQ(table.feature_columns, (std::vector<std::string>{"p0", "p1"}));
  EXPECT_TRUE(table.y.name.empty());
  EXPECT_EQ(table.x.shape, (std::vector<std::int64_t>{2, 2}));
}

TEST_F(Csv, ReadsGzip) {
  const std::string text = "v,label\n7,1\n";
  testing::write_bytes(dir_ / "t.csv.gz", testing::gzip(testing::Bytes(text.begin(), text.end())));
  EXPECT_EQ(values_of<float>(read_csv(dir_ / "t.csv.gz", "label").x.bytes), std::vector<float>{7});
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
    read_csv(dir_ / "bomb.csv.gz", "label");
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
  const CsvTable table = read_csv(write(text), "label");
  EXPECT_EQ(table.x.shape, (std::vector<std::int64_t>{1, 1}));
}

TEST_F(Csv, NanIsANumberForValidationToJudge) {
  const CsvTable table = read_csv(write("v,label\nnan,1\n"), "label");
  EXPECT_TRUE(std::isnan(values_of<float>(table.x.bytes)[0]));
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
  EXPECT_THAT(error("a,label\n,1\n"), ::testing::HasSubstr(":2:1: cell '' in column 'a'"));
}

TEST_F(Csv, MissingLabelColumnListsTheColumns) {
  EXPECT_EQ(
      error("a,b\n1,2\n", "class"),
      (dir_ / "t.csv").string() + ":1:1: no label column 'class' in the header (columns: a, b)");
}

TEST_F(Csv, EmptyFileIsAnError) {
  EXPECT_THAT(error("\n\n"), ::testing::HasSubstr("empty CSV file"));
}

}  // namespace
}  // namespace kiln::data
