// Event protobufs and TFRecord framing, encoded by hand: kiln needs three message
// types with five fields between them, which does not justify a libprotobuf
// dependency and generated code (the wire format is core/protobuf_wire.h, shared
// with the ONNX export). Field numbers and types are those of
// tensorboard/compat/proto/event.proto and summary.proto:
//   Event         { double wall_time = 1; int64 step = 2; string file_version = 3;
//                   Summary summary = 5; }
//   Summary       { repeated Value value = 1; }
//   Summary.Value { string tag = 1; float simple_value = 2; }
#include <kiln/tensorboard.h>

#include <fmt/format.h>

#include "core/protobuf_wire.h"

namespace kiln::tensorboard {

using protobuf::put_bytes;
using protobuf::put_double;
using protobuf::put_float;
using protobuf::put_int64;
using protobuf::put_little_endian;

namespace {

namespace event_field {
constexpr int kWallTime = 1, kStep = 2, kFileVersion = 3, kSummary = 5;
}
constexpr int kSummaryValue = 1;
namespace value_field {
constexpr int kTag = 1, kSimpleValue = 2;
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
