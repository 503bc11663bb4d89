#include <kiln/data/dataset.h>
#include <kiln/error.h>
#include <kiln/hash.h>

#include "data/data_test_support.h"

#include <gtest/gtest.h>

namespace kiln::data {
namespace {

using testing::Bytes;
using testing::make_array;

std::vector<Array> sample() {
  return {make_array("x", DType::U8, {2, 3}, {1, 2, 3, 4, 5, 6}),
          make_array("y", DType::U8, {2}, {0, 9})};
}

void put_u64(Sha256& hash, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    const auto byte = static_cast<std::uint8_t>(value >> (8 * i));
    hash.update(&byte, 1);
  }
}

// The documented recipe, written out independently of the implementation.
std::string expected_id(const std::vector<Array>& sorted_arrays) {
  Sha256 hash;
  for (const Array& array : sorted_arrays) {
    hash.update_field(array.name);
    hash.update_field(name_of(array.dtype));
    put_u64(hash, array.shape.size());
    for (const auto extent : array.shape) put_u64(hash, static_cast<std::uint64_t>(extent));
    hash.update_field(
        std::string_view(reinterpret_cast<const char*>(array.bytes.data()), array.bytes.size()));
  }
  return hash.hex_digest();
}

TEST(ContentId, FollowsTheDocumentedRecipe) {
  const std::string id = content_id(sample());
  EXPECT_EQ(id.size(), 64u);
  EXPECT_EQ(id, expected_id(sample()));
}

TEST(ContentId, IsStableAndIgnoresArrayOrder) {
  std::vector<Array> reversed = sample();
  std::swap(reversed[0], reversed[1]);
  EXPECT_EQ(content_id(sample()), content_id(sample()));
  EXPECT_EQ(content_id(reversed), content_id(sample()));
}

TEST(ContentId, ChangesWithOneByte) {
  std::vector<Array> changed = sample();
  changed[0].bytes[5] ^= 1;
  EXPECT_NE(content_id(changed), content_id(sample()));
}

TEST(ContentId, ChangesWithShapeForTheSameBytes) {
  std::vector<Array> reshaped = sample();
  reshaped[0].shape = {3, 2};
  EXPECT_NE(content_id(reshaped), content_id(sample()));
  reshaped[0].shape = {6};
  EXPECT_NE(content_id(reshaped), content_id(sample()));
}

TEST(ContentId, ChangesWithDtypeForTheSameBytes) {
  std::vector<Array> retyped = sample();
  retyped[0].dtype = DType::I8;
  EXPECT_NE(content_id(retyped), content_id(sample()));
}

TEST(ContentId, ChangesWhenAnArrayIsRenamed) {
  std::vector<Array> renamed = sample();
  renamed[1].name = "labels";
  EXPECT_NE(content_id(renamed), content_id(sample()));
}

TEST(ContentId, BoundariesBetweenArraysMatter) {
  // Same concatenated bytes, split differently between the two arrays.
  const std::vector<Array> a{make_array("a", DType::U8, {2}, {1, 2}),
                             make_array("b", DType::U8, {1}, {3})};
  const std::vector<Array> b{make_array("a", DType::U8, {1}, {1}),
                             make_array("b", DType::U8, {2}, {2, 3})};
  EXPECT_NE(content_id(a), content_id(b));
}

TEST(ContentId, RefusesInconsistentArrays) {
  std::vector<Array> short_bytes = sample();
  short_bytes[0].bytes.pop_back();
  EXPECT_THROW(content_id(short_bytes), DataError);
  std::vector<Array> twice = sample();
  twice[1].name = "x";
  EXPECT_THROW(content_id(twice), DataError);
}

}  // namespace
}  // namespace kiln::data
