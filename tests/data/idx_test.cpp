#include <kiln/data/idx.h>
#include <kiln/error.h>

#include "data/data_test_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <regex>
#include <string>

namespace kiln::data {
namespace {

using testing::big_endian;
using testing::Bytes;
using testing::gzip;
using ::testing::HasSubstr;
using testing::idx_file;
using testing::noise;
using testing::ScratchDir;
using testing::values_of;
using testing::write_bytes;

// The DataError message read_idx throws for `file`; fails the test if none.
std::string idx_error(const std::filesystem::path& file) {
  try {
    read_idx(file);
  } catch (const DataError& error) {
    return error.what();
  }
  ADD_FAILURE() << "read_idx(" << file << ") did not throw DataError";
  return {};
}

Bytes counting(std::size_t size) {
  Bytes bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return bytes;
}

TEST(ReadIdx, PlainU8KeepsShapeAndBytes) {
  ScratchDir dir;
  const Bytes data = counting(3 * 2 * 4);
  write_bytes(dir / "images.idx", idx_file(0x08, {3, 2, 4}, data));

  const Array array = read_idx(dir / "images.idx");
  EXPECT_EQ(array.dtype, DType::U8);
  EXPECT_EQ(array.shape, (std::vector<std::int64_t>{3, 2, 4}));
  EXPECT_EQ(array.rows(), 3);
  EXPECT_EQ(array.row_elements(), 8);
  EXPECT_EQ(array.elements(), 24);
  EXPECT_EQ(array.bytes, data);
  EXPECT_TRUE(array.name.empty());
}

TEST(ReadIdx, GzipGivesTheSameArrayAsPlain) {
  ScratchDir dir;
  const Bytes file = idx_file(0x08, {100, 28, 28}, noise(100 * 28 * 28, 1));
  write_bytes(dir / "plain", file);
  write_bytes(dir / "packed.gz", gzip(file));

  const Array plain = read_idx(dir / "plain");
  const Array packed = read_idx(dir / "packed.gz");
  EXPECT_EQ(packed.shape, (std::vector<std::int64_t>{100, 28, 28}));
  EXPECT_EQ(packed.bytes.size(), 78400u);
  EXPECT_EQ(packed.bytes, plain.bytes);
}

TEST(ReadIdx, GzipOfSeveralMembersIsReadWhole) {
  ScratchDir dir;
  const Bytes file = idx_file(0x08, {6}, {1, 2, 3, 4, 5, 6});
  Bytes first = gzip(Bytes(file.begin(), file.begin() + 7));
  const Bytes second = gzip(Bytes(file.begin() + 7, file.end()));
  first.insert(first.end(), second.begin(), second.end());
  write_bytes(dir / "two.gz", first);

  EXPECT_EQ(read_idx(dir / "two.gz").bytes, (Bytes{1, 2, 3, 4, 5, 6}));
}

TEST(ReadIdx, ConvertsBigEndianI32ToLittleEndian) {
  ScratchDir dir;
  const std::vector<std::int32_t> values{1,
                                         -2,
                                         0x01020304,
                                         std::numeric_limits<std::int32_t>::min(),
                                         std::numeric_limits<std::int32_t>::max(),
                                         0};
  write_bytes(dir / "i32", idx_file(0x0C, {2, 3}, big_endian(values)));

  const Array array = read_idx(dir / "i32");
  EXPECT_EQ(array.dtype, DType::I32);
  EXPECT_EQ(array.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(values_of<std::int32_t>(array.bytes), values);
  // 0x01020304 little-endian, byte for byte.
  EXPECT_EQ(array.bytes[8], 0x04);
  EXPECT_EQ(array.bytes[11], 0x01);
}

TEST(ReadIdx, ConvertsBigEndianF32ToLittleEndian) {
  ScratchDir dir;
  const std::vector<float> values{1.5f, -0.25f, 3.14159f, 1e-30f, -65504.0f};
  write_bytes(dir / "f32.gz", gzip(idx_file(0x0D, {5}, big_endian(values))));

  const Array array = read_idx(dir / "f32.gz");
  EXPECT_EQ(array.dtype, DType::F32);
  EXPECT_EQ(values_of<float>(array.bytes), values);
}

TEST(ReadIdx, ReadsI8I16AndF64) {
  ScratchDir dir;
  const std::vector<std::int16_t> shorts{-300, 258, 32767};
  const std::vector<double> doubles{2.5, -1e300};
  write_bytes(dir / "i8", idx_file(0x09, {2}, {0xFF, 0x7F}));
  write_bytes(dir / "i16", idx_file(0x0B, {3}, big_endian(shorts)));
  write_bytes(dir / "f64", idx_file(0x0E, {1, 2}, big_endian(doubles)));

  const Array i8 = read_idx(dir / "i8");
  EXPECT_EQ(i8.dtype, DType::I8);
  EXPECT_EQ(values_of<std::int8_t>(i8.bytes), (std::vector<std::int8_t>{-1, 127}));
  const Array i16 = read_idx(dir / "i16");
  EXPECT_EQ(i16.dtype, DType::I16);
  EXPECT_EQ(values_of<std::int16_t>(i16.bytes), shorts);
  const Array f64 = read_idx(dir / "f64");
  EXPECT_EQ(f64.dtype, DType::F64);
  EXPECT_EQ(values_of<double>(f64.bytes), doubles);
}

TEST(ReadIdx, ZeroRowsIsAnEmptyArray) {
  ScratchDir dir;
  write_bytes(dir / "empty", idx_file(0x08, {0, 28}, {}));
  const Array array = read_idx(dir / "empty");
  EXPECT_EQ(array.shape, (std::vector<std::int64_t>{0, 28}));
  EXPECT_TRUE(array.bytes.empty());
}

TEST(ReadIdx, TruncatedGzipNamesTheFileAndWhereItEnded) {
  ScratchDir dir;
  const Bytes packed = gzip(idx_file(0x08, {40, 1000}, noise(40000, 2)));
  ASSERT_GT(packed.size(), 40000u);  // noise does not compress
  write_bytes(dir / "cut.gz", Bytes(packed.begin(), packed.begin() + 20000));

  const std::string message = idx_error(dir / "cut.gz");
  EXPECT_THAT(message, HasSubstr((dir / "cut.gz").string() + ": truncated gzip stream"));
  std::smatch match;
  ASSERT_TRUE(std::regex_search(message, match, std::regex(R"(ended after (\d+) decompressed)")))
      << message;
  const long decompressed = std::stol(match[1]);
  EXPECT_GT(decompressed, 15000);  // deflate's stored blocks: roughly what came in
  EXPECT_LT(decompressed, 20000);
}

TEST(ReadIdx, GzipWithoutItsTrailerIsTruncatedEvenWithAllTheData) {
  ScratchDir dir;
  const Bytes packed = gzip(idx_file(0x08, {10}, counting(10)));
  write_bytes(dir / "no-trailer.gz", Bytes(packed.begin(), packed.end() - 4));
  EXPECT_THAT(idx_error(dir / "no-trailer.gz"),
              HasSubstr("truncated gzip stream (ended after 18 decompressed bytes)"));
}

TEST(ReadIdx, CorruptGzipIsADataError) {
  ScratchDir dir;
  Bytes packed = gzip(idx_file(0x08, {1000}, counting(1000)));
  // Flip the stored CRC-32 (the trailer's first four bytes).
  for (std::size_t i = packed.size() - 8; i < packed.size() - 4; ++i) packed[i] ^= 0xFF;
  write_bytes(dir / "bad-crc.gz", packed);
  EXPECT_THAT(idx_error(dir / "bad-crc.gz"),
              HasSubstr((dir / "bad-crc.gz").string() + ": corrupt gzip stream after 1008"));
}

TEST(ReadIdx, BadMagic) {
  ScratchDir dir;
  write_bytes(dir / "bad", {0x01, 0x02, 0x08, 0x01, 0, 0, 0, 1, 9});
  EXPECT_THAT(idx_error(dir / "bad"),
              HasSubstr((dir / "bad").string() + ": not an IDX file (bad magic 01 02 08 01"));
}

TEST(ReadIdx, UnknownTypeCode) {
  ScratchDir dir;
  write_bytes(dir / "type", idx_file(0x0A, {1}, {7}));
  EXPECT_THAT(idx_error(dir / "type"),
              HasSubstr((dir / "type").string() + ": unknown IDX type code 0x0a"));
}

TEST(ReadIdx, HeaderCutShort) {
  ScratchDir dir;
  write_bytes(dir / "tiny", {0, 0, 8});
  EXPECT_THAT(idx_error(dir / "tiny"), HasSubstr("too short for an IDX header (3 bytes)"));
  write_bytes(dir / "dims", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0});
  EXPECT_THAT(idx_error(dir / "dims"),
              HasSubstr("IDX header of rank 3 is cut short (10 of 16 bytes)"));
}

TEST(ReadIdx, ShortDataNamesExpectedAndActualSizes) {
  ScratchDir dir;
  write_bytes(dir / "short", idx_file(0x0C, {2, 5}, Bytes(33, 0)));
  EXPECT_THAT(idx_error(dir / "short"),
              HasSubstr((dir / "short").string() +
                        ": IDX data too short: header declares shape [2, 5] of i32 (40 bytes of "
                        "data) but only 33 follow"));
}

TEST(ReadIdx, TrailingBytesNameExpectedAndActualSizes) {
  ScratchDir dir;
  write_bytes(dir / "long.gz", gzip(idx_file(0x08, {4}, Bytes(6, 1))));
  EXPECT_THAT(idx_error(dir / "long.gz"),
              HasSubstr((dir / "long.gz").string() +
                        ": IDX data has trailing bytes: header declares shape [4] of u8 (4 bytes "
                        "of data) but 6 follow"));
}

TEST(ReadIdx, ImpossibleShapeIsRefusedWithoutAllocating) {
  ScratchDir dir;
  write_bytes(dir / "huge", idx_file(0x0E, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}));
  EXPECT_THAT(idx_error(dir / "huge"), HasSubstr("is impossibly large"));
  write_bytes(dir / "big", idx_file(0x08, {0xFFFFFFFF, 16}, Bytes(100, 0)));
  EXPECT_THAT(idx_error(dir / "big"), HasSubstr("but only 100 follow"));
}

// Zero rows make zero bytes, but a row of 2^64 elements must still be refused:
// everything downstream computes row sizes from the other extents.
TEST(ReadIdx, ZeroExtentDoesNotHideAnOverflowingShape) {
  ScratchDir dir;
  write_bytes(dir / "hollow", idx_file(0x0E, {0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}));
  EXPECT_EQ(idx_error(dir / "hollow"),
            (dir / "hollow").string() +
                ": IDX header: shape [0, 4294967295, 4294967295, 4294967295] of 8-byte elements "
                "is impossibly large (more than 2^48 bytes)");
}

TEST(ReadIdx, MissingFile) {
  ScratchDir dir;
  EXPECT_THAT(idx_error(dir / "absent.gz"),
              HasSubstr((dir / "absent.gz").string() + ": cannot open for reading"));
}

}  // namespace
}  // namespace kiln::data
