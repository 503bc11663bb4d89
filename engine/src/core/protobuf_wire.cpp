#include "core/protobuf_wire.h"

#include <bit>

namespace kiln::protobuf {

void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_little_endian(std::string& out, std::uint64_t bits, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

void put_key(std::string& out, int field, Wire wire) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire));
}

void put_double(std::string& out, int field, double value) {
  put_key(out, field, Wire::Fixed64);
  put_little_endian(out, std::bit_cast<std::uint64_t>(value), 8);
}

void put_float(std::string& out, int field, float value) {
  put_key(out, field, Wire::Fixed32);
  put_little_endian(out, std::bit_cast<std::uint32_t>(value), 4);
}

void put_int64(std::string& out, int field, std::int64_t value) {
  put_key(out, field, Wire::Varint);
  put_varint(out, static_cast<std::uint64_t>(value));
}

void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_key(out, field, Wire::LengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

}  // namespace kiln::protobuf
