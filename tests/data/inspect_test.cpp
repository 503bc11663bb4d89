// verify_dataset and diff_datasets, with data changed behind the store's back.
#include <kiln/data/inspect.h>
#include <kiln/error.h>

#include "data/data_test_support.h"
#include "data/hdf5_edit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;
using testing::flip_one_byte;
using ::testing::HasSubstr;
using testing::make_array;

class Inspect : public ::testing::Test {
 protected:
  DatasetVersion put(const std::string& name, Bytes x, Bytes y) {
    const auto rows = static_cast<std::int64_t>(y.size());
    const auto features = static_cast<std::int64_t>(x.size()) / rows;
    return store_.put(name,
                      {make_array("x", DType::U8, {rows, features}, std::move(x)),
                       make_array("y", DType::U8, {rows}, std::move(y))},
                      {});
  }
  testing::ScratchDir dir_;
  DatasetStore store_{dir_.path()};
};

TEST_F(Inspect, VerifyPassesOnAnUntouchedVersion) {
  const DatasetVersion version = put("a", testing::noise(4000, 1), Bytes(1000, 3));
  const Verification result = verify_dataset(version.file);
  EXPECT_TRUE(result.ok()) << result.problem();
  EXPECT_EQ(result.actual_id, version.id);
  ASSERT_EQ(result.arrays.size(), 2u);
  EXPECT_TRUE(result.arrays[0].matches());
  EXPECT_EQ(result.problem(), "");
}

TEST_F(Inspect, VerifyNamesTheArrayWithOneFlippedByte) {
  const DatasetVersion version = put("a", testing::noise(4000, 1), Bytes(1000, 3));
  const fs::path copy = dir_ / "copy.h5";
  fs::copy_file(version.file, copy);
  flip_one_byte(copy, "x", 1234);
  const Verification result = verify_dataset(copy);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.recorded_id, version.id);
  EXPECT_FALSE(result.arrays[0].matches());
  EXPECT_TRUE(result.arrays[1].matches());
  EXPECT_THAT(result.problem(), HasSubstr("array 'x' does not match its recorded SHA-256"));
  EXPECT_THAT(result.problem(), ::testing::Not(HasSubstr("array 'y'")));
}

TEST_F(Inspect, LabelCounts) {
  const DatasetVersion version = put("a", Bytes(6, 0), {0, 1, 1, 2, 2, 2});
  EXPECT_EQ(label_counts(version.file),
            (std::map<std::int64_t, std::int64_t>{{0, 1}, {1, 2}, {2, 3}}));
  EXPECT_THROW(label_counts(version.file, "nope"), DataError);
}

TEST_F(Inspect, DiffCountsChangedRowsAndClassBalance) {
  const DatasetVersion a = put("a", {1, 2, 3, 4, 5, 6}, {0, 1, 1});
  const DatasetVersion b = put("b", {1, 2, 9, 4, 5, 6}, {0, 1, 0});
  const DatasetDifference difference = diff_datasets(a, b);
  ASSERT_EQ(difference.arrays.size(), 2u);
  EXPECT_EQ(difference.arrays[0].changed_rows, 1);
  EXPECT_EQ(difference.arrays[0].first_changed, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(difference.arrays[1].first_changed, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(difference.changed_rows, 2);
  EXPECT_EQ(difference.labels_a, (std::map<std::int64_t, std::int64_t>{{0, 1}, {1, 2}}));
  EXPECT_EQ(difference.labels_b, (std::map<std::int64_t, std::int64_t>{{0, 2}, {1, 1}}));
  EXPECT_EQ(to_json(difference)["changed_rows"], 2);
}

TEST_F(Inspect, DiffOfDifferentLengthsComparesShapesOnly) {
  const DatasetVersion a = put("a", {1, 2, 3, 4}, {0, 1});
  const DatasetVersion b = put("b", {1, 2, 3, 4, 5, 6}, {0, 1, 1});
  const DatasetDifference difference = diff_datasets(a, b);
  EXPECT_FALSE(difference.changed_rows.has_value());
  EXPECT_FALSE(difference.arrays[0].changed_rows.has_value());
  EXPECT_EQ(difference.arrays[0].b->shape, (std::vector<std::int64_t>{3, 2}));
}

}  // namespace
}  // namespace kiln::data
