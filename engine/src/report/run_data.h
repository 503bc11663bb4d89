// Private to the report area: what a run report shows, read from the registry.
#pragma once

#include <kiln/registry/browse.h>
#include <kiln/registry/mlflow_store.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace kiln::report::detail {

// artifacts/evaluation/<stage>.json, as the evaluate stage writes it.
struct Evaluation {
  std::string stage;
  nlohmann::json data;  // null when the file could not be read; `error` says why
  std::string error;
};

struct RunData {
  registry::RunSummary summary;
  std::filesystem::path directory;
  // Every metric's points, sorted by step (stable: equal steps keep file order).
  std::map<std::string, std::vector<registry::MetricPoint>> history;
  std::vector<Evaluation> evaluations;
  // Model versions this run registered or trained, by model and version.
  std::vector<registry::ModelVersionInfo> versions;
};

// ConfigError for an unknown run; DataError naming the file for a malformed one.
RunData load_run_data(const registry::MlflowStore& store, const std::string& run_id);

// "12.3 s", "4 min 5 s", "2 h 3 min".
std::string duration_text(std::int64_t milliseconds);

// Run, dataset and weight ids cut to 12 characters, as kiln's CLI prints them in
// tables: unique in practice, and they keep a table one screen wide. The tables
// that name a thing once show its id whole.
std::string short_id(const std::string& id);

}  // namespace kiln::report::detail
