// validate_dataset: each check on small hand-made versions.
#include <kiln/data/dataset.h>
#include <kiln/data/validate.h>

#include "data/data_test_support.h"
#include "data/npy_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

namespace kiln::data {
namespace {

using testing::Bytes;
using ::testing::HasSubstr;
using testing::make_array;

class Validate : public ::testing::Test {
 protected:
  DatasetVersion put(std::vector<float> x, Bytes y, std::int64_t features = 2) {
    const auto rows = static_cast<std::int64_t>(y.size());
    return store_.put("v" + std::to_string(counter_++),
                      {make_array("x", DType::F32, {rows, features}, testing::little_endian(x)),
                       make_array("y", DType::U8, {rows}, std::move(y))},
                      {});
  }
  const ValidationFinding* find(const ValidationReport& report, const std::string& check) {
    for (const auto& finding : report.findings)
      if (finding.check == check) return &finding;
    return nullptr;
  }
  testing::ScratchDir dir_;
  DatasetStore store_{dir_.path()};
  int counter_ = 0;
};

TEST_F(Validate, CleanDataPassesEveryCheck) {
  const auto version = put({0, 1, 2, 3, 4, 5}, {0, 1, 2});
  ValidationOptions options;
  options.schema = {{"x", DType::F32, {-1, 2}}, {"y", DType::U8, {3}}};
  options.ranges = {{"x", 0, 5}};
  options.classes = {0, 1, 2};
  options.min_class_fraction = 0.3;
  options.max_duplicate_fraction = 0;
  const ValidationReport report = validate_dataset(version.file, options);
  EXPECT_TRUE(report.passed()) << report.failures();
  EXPECT_EQ(report.stats["rows"], 3);
  EXPECT_EQ(report.stats["arrays"]["x"]["max"], 5.0);
  EXPECT_EQ(report.to_json()["passed"], true);
}

TEST_F(Validate, NanAndInfAreFoundWithTheirRow) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const auto version = put({0, 1, 2, nan, 4, inf}, {0, 1, 2});
  const ValidationReport report = validate_dataset(version.file, {});
  EXPECT_FALSE(report.passed());
  EXPECT_EQ(report.failures(), "nan: array 'x' holds 1 NaN and 1 Inf values (first in row 1)");
  ValidationOptions allowed;
  allowed.allow_nan = true;
  EXPECT_TRUE(validate_dataset(version.file, allowed).passed());
}

TEST_F(Validate, SchemaAndRangeViolationsAreNamed) {
  const auto version = put({0, 1, 2, 300}, {0, 1});
  ValidationOptions options;
  options.schema = {{"x", DType::U8, {-1, 3}}, {"z", std::nullopt, {}}};
  options.ranges = {{"x", 0, 255}};
  const ValidationReport report = validate_dataset(version.file, options);
  EXPECT_THAT(report.failures(), HasSubstr("schema: array 'x' is f32 [2, 2], expected u8 [-1, 3]"));
  EXPECT_THAT(report.failures(), HasSubstr("schema: no array 'z'"));
  EXPECT_THAT(report.failures(),
              HasSubstr("range: array 'x' has values in [0, 300]; allowed [0, 255]: 1 outside, "
                        "first in row 1"));
}

TEST_F(Validate, LabelSetAndBalance) {
  const auto version = put(std::vector<float>(20, 0), {0, 0, 0, 0, 0, 0, 0, 0, 0, 7});
  ValidationOptions options;
  options.classes = {0, 1};
  options.min_class_fraction = 0.2;
  options.max_duplicate_fraction = 1;
  const ValidationReport report = validate_dataset(version.file, options);
  EXPECT_EQ(find(report, "labels")->message,
            "2 classes; unexpected labels [7], missing classes [1]");
  EXPECT_THAT(find(report, "balance")->message, HasSubstr("smallest class 1 has 0 of the rows"));
  EXPECT_EQ(report.stats["labels"]["counts"]["0"], 9);
}

TEST_F(Validate, DuplicatesAndConflictingLabels) {
  const auto version = put({1, 2, 1, 2, 1, 2, 3, 4}, {0, 0, 1, 5});
  ValidationOptions options;
  options.max_duplicate_fraction = 0.2;
  options.allow_conflicting_labels = false;
  const ValidationReport report = validate_dataset(version.file, options);
  EXPECT_EQ(report.stats["duplicates"]["rows"], 1);
  EXPECT_EQ(report.stats["duplicates"]["conflicting_labels"], 1);
  EXPECT_THAT(report.failures(), HasSubstr("1 duplicate rows (0.25 of the rows; allowed 0.2)"));
  EXPECT_THAT(report.failures(), HasSubstr("1 rows repeat the features of an earlier row"));
}

TEST_F(Validate, OverlapWithAnotherVersion) {
  const auto train = put({1, 2, 3, 4, 5, 6}, {0, 1, 2});
  const auto test = put({9, 9, 3, 4}, {0, 1});
  ValidationOptions options;
  options.overlap_with = test.file;
  const ValidationReport report = validate_dataset(train.file, options);
  EXPECT_EQ(report.stats["overlap"]["rows"], 1);
  EXPECT_THAT(report.failures(), HasSubstr("overlap: 1 rows of 'x' also appear in"));
  options.max_overlap_rows = 1;
  EXPECT_TRUE(validate_dataset(train.file, options).passed());
}

}  // namespace
}  // namespace kiln::data
