// Reading the registry for people: what `kiln registry ls/show/diff` print. The
// CLI only formats these.
#pragma once

#include <kiln/registry/mlflow_store.h>
#include <kiln/safetensors.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::registry {

// "NAME", "NAME@VERSION" or "NAME@ALIAS", as given on kiln's command line.
struct ModelRef {
  std::string model;
  std::optional<std::int64_t> version;
  std::string alias;  // empty unless given
};
// ConfigError for a bad model name or alias, or an empty part.
ModelRef parse_model_ref(std::string_view text);
// The version `ref` names; with neither version nor alias, the latest one.
// ConfigError for an unknown model, version or alias.
ModelVersionInfo resolve_model_ref(const MlflowStore& store, const ModelRef& ref);

struct RunSummary {
  RunInfo info;
  std::string experiment_name;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
  std::map<std::string, MetricPoint> metrics;  // final value of each metric
  std::vector<std::string> artifacts;
};
// ConfigError for an unknown run.
RunSummary summarize_run(const MlflowStore& store, const std::string& run_id);
// The run with this id, or nothing when `text` names no run (it may be a model).
std::optional<RunSummary> find_run(const MlflowStore& store, const std::string& text);

struct RunListing {
  RunInfo info;
  std::string experiment_name;
};
// Active runs of every active experiment, oldest first.
std::vector<RunListing> list_all_runs(const MlflowStore& store);

struct ModelListing {
  std::string name;
  std::size_t versions = 0;
  std::int64_t latest = 0;  // 0 when the model has no version
  std::map<std::string, std::int64_t> aliases;
};
std::vector<ModelListing> list_model_summaries(const MlflowStore& store);

// One key of a run diff: its value in each run, nothing where the run lacks it.
struct DiffRow {
  std::string key;
  std::optional<std::string> left;
  std::optional<std::string> right;
  bool differs() const { return left != right; }
};
struct RunDiff {
  RunSummary left;
  RunSummary right;
  std::vector<DiffRow> params;   // every param of either run, by key
  std::vector<DiffRow> metrics;  // every final metric of either run, by key
};
RunDiff diff_runs(const MlflowStore& store, const std::string& left_run,
                  const std::string& right_run);

// A metric value as kiln writes it: the shortest text that reads back the same.
std::string metric_text(double value);

// The weights registered with a version: model.safetensors in its source
// directory, read and checked in full (DataError naming the file when malformed).
// Nothing when the source is not a local directory (a version made by another tool).
struct ModelWeights {
  std::filesystem::path file;
  SafetensorsFile contents;
};
std::optional<ModelWeights> read_model_weights(const ModelVersionInfo& version);
// Where those weights are, without reading them: DataError naming the file when it
// is missing, nothing when the source is not a local directory.
std::optional<std::filesystem::path> model_weights_file(const ModelVersionInfo& version);

}  // namespace kiln::registry
