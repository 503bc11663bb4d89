// CRC-32C and the hand-encoded Event records, byte for byte. The expected bytes
// are what google.protobuf serializes for the same Event messages, and the
// expected CRCs what TensorBoard's own reader computes (its pure-Python
// masked_crc32c), so these tests pin kiln to the reader, not to itself.
#include <kiln/tensorboard.h>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <string>

#include "support/support.h"

namespace kiln::tensorboard {
namespace {

using test::from_hex;

std::string little_endian_u32(std::uint32_t value) {
  std::string bytes;
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  return bytes;
}

TEST(Crc32c, MatchesTheStandardCheckValues) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32c, MaskedAsTensorBoardComputesIt) {
  EXPECT_EQ(masked_crc32c("123456789"), 0xC78AB0E5u);
  EXPECT_EQ(masked_crc32c(""), 0xA282EAD8u);
}

TEST(EventEncoding, ScalarEventIsTheProtobufOfEventSummaryValue) {
  // Event{wall_time: 1.5, step: 7, summary{value{tag: "a/b", simple_value: 0.25}}}
  const std::string expected = from_hex(
      "09000000000000f83f"  // field 1, fixed64: wall_time 1.5
      "1007"                // field 2, varint: step 7
      "2a0c"                // field 5, 12 bytes: summary
      "0a0a"                //   field 1, 10 bytes: value
      "0a03612f62"          //     field 1, 3 bytes: tag "a/b"
      "150000803e");        //     field 2, fixed32: simple_value 0.25f
  EXPECT_EQ(scalar_event(1.5, 7, "a/b", 0.25f), expected);
}

TEST(EventEncoding, FileVersionEventComesFirstInEveryFile) {
  const std::string expected = from_hex(
      "09000000000000f83f"                // wall_time 1.5
      "1a0d627261696e2e4576656e743a32");  // field 3, 13 bytes: "brain.Event:2"
  EXPECT_EQ(file_version_event(1.5), expected);
}

TEST(EventEncoding, NegativeStepsAreTenByteVarints) {
  const std::string event = scalar_event(1.5, -1, "t", 1.0f);
  EXPECT_EQ(event.substr(9, 11), from_hex("10ffffffffffffffffff01"));
}

TEST(EventEncoding, NanSurvivesAsFloatBits) {
  const std::string nan_event = scalar_event(0, 1, "x", std::nanf(""));
  std::uint32_t bits = 0;
  for (int i = 0; i < 4; ++i)
    bits |= static_cast<std::uint32_t>(static_cast<unsigned char>(
                nan_event[nan_event.size() - 4 + static_cast<std::size_t>(i)]))
            << (8 * i);
  EXPECT_TRUE(std::isnan(std::bit_cast<float>(bits)));
}

TEST(TfRecord, FramesThePayloadWithMaskedCrcs) {
  const std::string payload = scalar_event(1.5, 7, "a/b", 0.25f);
  const std::string expected = from_hex("1900000000000000") + little_endian_u32(0x2808F18Bu) +
                               payload + little_endian_u32(0x8EBD4D6Bu);
  EXPECT_EQ(tfrecord(payload), expected);
}

TEST(TfRecord, FileVersionRecord) {
  const std::string payload = file_version_event(1.5);
  EXPECT_EQ(tfrecord(payload), from_hex("1800000000000000") + little_endian_u32(0x224B7FA3u) +
                                   payload + little_endian_u32(0x6C64282Au));
}

TEST(EventFileName, IsWhatTensorBoardLooksFor) {
  EXPECT_EQ(event_file_name(1700000000, "node-7"), "events.out.tfevents.1700000000.node-7");
}

}  // namespace
}  // namespace kiln::tensorboard
