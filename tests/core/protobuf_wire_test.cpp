// The protobuf wire helpers shared by the TensorBoard and ONNX encoders, byte for
// byte. The expected bytes are the examples of the protobuf encoding guide
// (protobuf.dev/programming-guides/encoding: 150 -> 96 01, "testing" in field 2)
// and what protobuf serializes for the same fields.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "core/protobuf_wire.h"

namespace kiln::protobuf {
namespace {

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out += digits[byte >> 4];
    out += digits[byte & 0xF];
  }
  return out;
}

template <class Put>
std::string encoded(Put put) {
  std::string out;
  put(out);
  return hex(out);
}

TEST(ProtobufWire, VarintsAreBase128LeastSignificantGroupFirst) {
  auto varint = [](std::uint64_t value) {
    return encoded([&](std::string& out) { put_varint(out, value); });
  };
  EXPECT_EQ(varint(0), "00");
  EXPECT_EQ(varint(1), "01");
  EXPECT_EQ(varint(127), "7f");
  EXPECT_EQ(varint(128), "8001");
  EXPECT_EQ(varint(150), "9601");
  EXPECT_EQ(varint(300), "ac02");
  EXPECT_EQ(varint(std::numeric_limits<std::uint64_t>::max()), "ffffffffffffffffff01");
}

TEST(ProtobufWire, KeysCombineFieldNumberAndWireType) {
  auto key = [](int field, Wire wire) {
    return encoded([&](std::string& out) { put_key(out, field, wire); });
  };
  EXPECT_EQ(key(1, Wire::Varint), "08");
  EXPECT_EQ(key(1, Wire::Fixed64), "09");
  EXPECT_EQ(key(2, Wire::LengthDelimited), "12");
  EXPECT_EQ(key(2, Wire::Fixed32), "15");
  EXPECT_EQ(key(15, Wire::Varint), "78");
  EXPECT_EQ(key(16, Wire::Varint), "8001");  // field numbers from 16 take two bytes
  EXPECT_EQ(key(20, Wire::Varint), "a001");
}

TEST(ProtobufWire, FieldsOfEachWireType) {
  EXPECT_EQ(encoded([](std::string& out) { put_int64(out, 1, 150); }), "089601");
  // A negative int64 is its two's complement as a ten-byte varint.
  EXPECT_EQ(encoded([](std::string& out) { put_int64(out, 2, -1); }), "10ffffffffffffffffff01");
  EXPECT_EQ(encoded([](std::string& out) { put_bytes(out, 2, "testing"); }), "120774657374696e67");
  EXPECT_EQ(encoded([](std::string& out) { put_bytes(out, 3, ""); }), "1a00");
  EXPECT_EQ(encoded([](std::string& out) { put_float(out, 2, 0.25f); }), "150000803e");
  EXPECT_EQ(encoded([](std::string& out) { put_double(out, 1, 1.5); }), "09000000000000f83f");
}

TEST(ProtobufWire, LengthsOfLongFieldsAreVarints) {
  std::string out;
  put_bytes(out, 9, std::string(300, 'x'));
  ASSERT_EQ(out.size(), 3u + 300u);
  EXPECT_EQ(hex(out.substr(0, 3)), "4aac02");  // field 9, length-delimited; 300 bytes
}

TEST(ProtobufWire, LittleEndianWhateverTheHost) {
  EXPECT_EQ(encoded([](std::string& out) { put_little_endian(out, 0x0102030405060708u, 8); }),
            "0807060504030201");
  EXPECT_EQ(encoded([](std::string& out) { put_little_endian(out, 0xA1B2C3D4u, 4); }), "d4c3b2a1");
}

}  // namespace
}  // namespace kiln::protobuf
