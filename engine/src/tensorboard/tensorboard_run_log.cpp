#include <kiln/tensorboard.h>

namespace kiln::tensorboard {

TensorBoardRunLog::TensorBoardRunLog(RunLog& inner) : inner_(inner) {}

TensorBoardRunLog::~TensorBoardRunLog() = default;  // the writer fsyncs as it closes

// The registry's metric file is the record of truth: it is written first, and a
// key it refuses never reaches the event file.
void TensorBoardRunLog::log_metric(std::string_view key, double value, std::int64_t step) {
  inner_.log_metric(key, value, step);
  if (!writer_) {
    writer_ = std::make_unique<EventFileWriter>(inner_.artifact_dir() / "tensorboard");
    event_file_ = writer_->path();
  }
  writer_->add_scalar(key, value, step);
}

void TensorBoardRunLog::log_param(std::string_view key, std::string_view value) {
  inner_.log_param(key, value);
}

void TensorBoardRunLog::set_tag(std::string_view key, std::string_view value) {
  inner_.set_tag(key, value);
}

// A metric logged after close() starts a new event file; TensorBoard reads every
// event file in the directory.
void TensorBoardRunLog::close() {
  if (!writer_) return;
  const auto writer = std::move(writer_);
  writer->close();
}

}  // namespace kiln::tensorboard
