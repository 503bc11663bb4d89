// Metrics kept in memory: the tests' stand-in for the MLflow run where a test
// checks what the trainer logged (the registry tests cover the real run).
#pragma once

#include <kiln/run_log.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kiln::test {

class MemoryRunLog final : public RunLog {
 public:
  const std::string& run_id() const override { return id_; }
  const std::string& experiment_id() const override { return id_; }
  void log_metric(std::string_view key, double value, std::int64_t step) override {
    metrics[std::string(key)].emplace_back(step, value);
  }
  void log_param(std::string_view, std::string_view) override {}
  void set_tag(std::string_view, std::string_view) override {}
  std::filesystem::path artifact_dir() override { return {}; }

  // Per key, (step, value) in the order logged.
  std::map<std::string, std::vector<std::pair<std::int64_t, double>>> metrics;

 private:
  std::string id_ = "test";
};

}  // namespace kiln::test
