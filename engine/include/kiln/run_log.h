// The tracking run that a pipeline execution writes to: MLflow's file-store layout
// under <registry>/mlruns (see docs/formats.md). Stages only see this interface.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace kiln {

class RunLog {
 public:
  virtual ~RunLog();

  virtual const std::string& run_id() const = 0;
  virtual const std::string& experiment_id() const = 0;
  // One line "<ms since epoch> <value> <step>" appended to metrics/<key>.
  virtual void log_metric(std::string_view key, double value, std::int64_t step) = 0;
  virtual void log_param(std::string_view key, std::string_view value) = 0;
  virtual void set_tag(std::string_view key, std::string_view value) = 0;
  // The run's artifact directory (created on first call).
  virtual std::filesystem::path artifact_dir() = 0;
};

}  // namespace kiln
