#include <kiln/checked_size.h>
#include <kiln/error.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace kiln {
namespace {

using ::testing::HasSubstr;

std::string error_of(const std::vector<std::int64_t>& shape, std::int64_t element_size) {
  try {
    checked_bytes(shape, element_size, "f.bin: header");
  } catch (const DataError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no DataError";
  return {};
}

TEST(CheckedBytes, MultipliesShapesThatFit) {
  EXPECT_EQ(checked_bytes(std::vector<std::int64_t>{60000, 28, 28}, 4, "x"), 60000 * 784 * 4);
  EXPECT_EQ(checked_bytes(std::vector<std::int64_t>{}, 8, "x"), 8);
  EXPECT_EQ(checked_product(std::vector<std::int64_t>{3, 5}, "x"), 15);
  EXPECT_EQ(checked_bytes(std::vector<std::int64_t>{1 << 24, 1 << 22}, 4, "x"),
            kMaxDeclaredBytes);  // exactly the bound
}

TEST(CheckedBytes, OverflowAndTheBoundAreDataErrorsNamingWhatAndShape) {
  EXPECT_EQ(error_of({1 << 24, (1 << 22) + 1}, 4),
            "f.bin: header: shape [16777216, 4194305] of 4-byte elements is impossibly large "
            "(more than 2^48 bytes)");
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  EXPECT_THAT(error_of({max, max}, 1), HasSubstr("shape [9223372036854775807, 9223372036854775807] "
                                                 "is impossibly large"));
  EXPECT_THAT(error_of({3, -1}, 1), HasSubstr("has a negative extent"));
}

// A zero extent makes the size 0, but must not hide extents whose product
// overflows: rows * row_elements is computed from the others elsewhere.
TEST(CheckedBytes, ZeroExtentStillChecksTheOthers) {
  EXPECT_EQ(checked_bytes(std::vector<std::int64_t>{0, 1000, 1000}, 8, "x"), 0);
  EXPECT_THAT(error_of({0, 4294967295, 4294967295, 4294967295}, 8),
              HasSubstr("is impossibly large"));
  EXPECT_THAT(error_of({4294967295, 4294967295, 0}, 1), HasSubstr("is impossibly large"));
}

}  // namespace
}  // namespace kiln
