// TensorBoard scalars without TensorFlow: event files in the TFRecord framing that
// TensorBoard's own reader reads (docs/formats.md, "TensorBoard event files").
//
// A record is: u64 little-endian payload length, masked CRC-32C of those 8 bytes,
// the payload, masked CRC-32C of the payload. The payload is an `Event` protobuf
// (tensorboard/compat/proto/event.proto), encoded here by hand: the first event of a
// file carries file_version "brain.Event:2", every other one a scalar summary.
#pragma once

#include <kiln/run_log.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace kiln::tensorboard {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses it:
// crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(std::string_view bytes) noexcept;
// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, so that a CRC
// stored inside checksummed data does not checksum to a fixed value.
std::uint32_t masked_crc32c(std::string_view bytes) noexcept;

// One TFRecord around `payload`.
std::string tfrecord(std::string_view payload);

// Event{wall_time, file_version} and Event{wall_time, step, summary{value{tag,
// simple_value}}}, protobuf wire format. `wall_time` is seconds since the epoch.
std::string file_version_event(double wall_time);
std::string scalar_event(double wall_time, std::int64_t step, std::string_view tag, float value);

// "events.out.tfevents.<seconds>.<hostname>", the name TensorBoard looks for.
std::string event_file_name(std::int64_t seconds, std::string_view host);

// One event file in `directory` (created if missing), opened on construction with
// the file_version event. Each scalar is one record in one write(2) on an O_APPEND
// descriptor: nothing waits in a user-space buffer, so an interrupted or crashing
// run keeps every scalar it logged. close() (and the destructor) fsyncs the file.
class EventFileWriter {
 public:
  explicit EventFileWriter(const std::filesystem::path& directory);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // TensorBoard keeps scalars as float32; the value is rounded to it.
  void add_scalar(std::string_view tag, double value, std::int64_t step);
  // Flushes to disk and closes; later add_scalar calls are a bug (InternalError).
  void close();
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  void append(const std::string& record);

  std::filesystem::path path_;
  int fd_ = -1;
};

// A RunLog that forwards every call to `inner` and also writes each metric as a
// TensorBoard scalar (same tag, step and value) to
// <inner.artifact_dir()>/tensorboard/events.out.tfevents.<seconds>.<host>.
// The event file is created with the first metric, so a run that logs none has
// none. `inner` must outlive this object.
class TensorBoardRunLog final : public RunLog {
 public:
  explicit TensorBoardRunLog(RunLog& inner);
  ~TensorBoardRunLog() override;

  const std::string& run_id() const override { return inner_.run_id(); }
  const std::string& experiment_id() const override { return inner_.experiment_id(); }
  void log_metric(std::string_view key, double value, std::int64_t step) override;
  void log_param(std::string_view key, std::string_view value) override;
  void set_tag(std::string_view key, std::string_view value) override;
  std::filesystem::path artifact_dir() override { return inner_.artifact_dir(); }

  // Flushes the event file to disk (at the end of a run, interrupted or not).
  void close();
  // The latest event file, empty before the first metric.
  const std::filesystem::path& event_file() const noexcept { return event_file_; }

 private:
  RunLog& inner_;
  std::unique_ptr<EventFileWriter> writer_;
  std::filesystem::path event_file_;
};

}  // namespace kiln::tensorboard
