// The protobuf wire format, for the few messages kiln writes by hand (TensorBoard
// events, ONNX models): keys, varints, fixed-width numbers and length-delimited
// fields. Each put_* appends one field to `out`; a sub-message is encoded into its
// own string first and appended with put_bytes. Numbers are written little-endian
// whatever the host's byte order. https://protobuf.dev/programming-guides/encoding/
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::protobuf {

enum class Wire : std::uint8_t { Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5 };

// Base-128, least significant group first, high bit set on all but the last byte.
void put_varint(std::string& out, std::uint64_t value);
// The low `bytes` bytes of `bits`, least significant first.
void put_little_endian(std::string& out, std::uint64_t bits, int bytes);
// (field << 3) | wire type, as a varint.
void put_key(std::string& out, int field, Wire wire);

void put_double(std::string& out, int field, double value);  // fixed64
void put_float(std::string& out, int field, float value);    // fixed32
// int64 and int32 fields are plain varints: a negative value takes ten bytes
// (two's complement), as protobuf writes it.
void put_int64(std::string& out, int field, std::int64_t value);
// Strings, bytes and sub-messages: the length as a varint, then the bytes.
void put_bytes(std::string& out, int field, std::string_view bytes);

}  // namespace kiln::protobuf
