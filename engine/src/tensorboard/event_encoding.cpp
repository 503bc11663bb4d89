// Event protobufs and TFRecord framing, encoded by hand: kiln needs three message
// types with five fields between them, which does not justify a libprotobuf
// dependency and generated code. Field numbers and types are those of
// tensorboard/compat/proto/event.proto and summary.proto:
//   Event         { double wall_time = 1; int64 step = 2; string file_version = 3;
//                   Summary summary = 5; }
//   Summary       { repeated Value value = 1; }
//   Summary.Value { string tag = 1; float simple_value = 2; }
#include <kiln/tensorboard.h>

#include <fmt/format.h>

#include <bit>

namespace kiln::tensorboard {
namespace {

// Protobuf wire types.
enum class Wire : std::uint8_t { Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5 };

namespace event_field {
constexpr int kWallTime = 1, kStep = 2, kFileVersion = 3, kSummary = 5;
}
constexpr int kSummaryValue = 1;
namespace value_field {
constexpr int kTag = 1, kSimpleValue = 2;
}

void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// Little-endian whatever the host's byte order.
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

// int64 is a plain varint: a negative step takes ten bytes (two's complement).
void put_int64(std::string& out, int field, std::int64_t value) {
  put_key(out, field, Wire::Varint);
  put_varint(out, static_cast<std::uint64_t>(value));
}

void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_key(out, field, Wire::LengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

}  // namespace

std::string tfrecord(std::string_view payload) {
  std::string length;
  put_little_endian(length, payload.size(), 8);
  std::string record = length;
  put_little_endian(record, masked_crc32c(length), 4);
  record.append(payload);
  put_little_endian(record, masked_crc32c(payload), 4);
  return record;
}

std::string file_version_event(double wall_time) {
  std::string event;
  put_double(event, event_field::kWallTime, wall_time);
  put_bytes(event, event_field::kFileVersion, "brain.Event:2");
  return event;
}

std::string scalar_event(double wall_time, std::int64_t step, std::string_view tag, float value) {
  std::string summary_value;
  put_bytes(summary_value, value_field::kTag, tag);
  put_float(summary_value, value_field::kSimpleValue, value);
  std::string summary;
  put_bytes(summary, kSummaryValue, summary_value);
  std::string event;
  put_double(event, event_field::kWallTime, wall_time);
  put_int64(event, event_field::kStep, step);
  put_bytes(event, event_field::kSummary, summary);
  return event;
}

std::string event_file_name(std::int64_t seconds, std::string_view host) {
  return fmt::format("events.out.tfevents.{}.{}", seconds, host);
}

}  // namespace kiln::tensorboard
