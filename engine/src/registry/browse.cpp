#include <kiln/error.h>
#include <kiln/registry/browse.h>
#include <kiln/registry/names.h>

#include "registry/store_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <tuple>

namespace kiln::registry {
namespace fs = std::filesystem;

namespace {

std::optional<std::int64_t> parse_version(std::string_view text) {
  std::int64_t number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size() || number < 1) return std::nullopt;
  return number;
}

std::string experiment_name(const MlflowStore& store, const std::string& experiment_id) {
  for (const ExperimentInfo& experiment : store.list_experiments())
    if (experiment.experiment_id == experiment_id) return experiment.name;
  return "";
}

// Rows for the union of both maps' keys, in key order.
template <class Value, class Text>
std::vector<DiffRow> diff_maps(const std::map<std::string, Value>& left,
                               const std::map<std::string, Value>& right, Text text) {
  std::set<std::string> keys;
  for (const auto& [key, value] : left) keys.insert(key);
  for (const auto& [key, value] : right) keys.insert(key);
  std::vector<DiffRow> rows;
  for (const std::string& key : keys) {
    DiffRow row{key, std::nullopt, std::nullopt};
    if (const auto it = left.find(key); it != left.end()) row.left = text(it->second);
    if (const auto it = right.find(key); it != right.end()) row.right = text(it->second);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

ModelRef parse_model_ref(std::string_view text) {
  ModelRef ref;
  const std::size_t at = text.find('@');
  ref.model = std::string(text.substr(0, at));
  validate_model_name(ref.model);
  if (at == std::string_view::npos) return ref;
  const std::string_view selector = text.substr(at + 1);
  if (const auto version = parse_version(selector)) {
    ref.version = version;
    return ref;
  }
  if (!selector.empty() &&
      std::all_of(selector.begin(), selector.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw ConfigError(fmt::format("registry: '{}': version numbers start at 1", text));
  validate_alias(selector);
  ref.alias = std::string(selector);
  return ref;
}

ModelVersionInfo resolve_model_ref(const MlflowStore& store, const ModelRef& ref) {
  if (ref.version) return store.get_version(ref.model, *ref.version);
  if (!ref.alias.empty()) {
    const auto version = store.alias_version(ref.model, ref.alias);
    if (!version)
      throw ConfigError(
          fmt::format("registry: model '{}' has no alias '{}'", ref.model, ref.alias));
    return store.get_version(ref.model, *version);
  }
  const std::vector<ModelVersionInfo> versions = store.list_versions(ref.model);
  if (versions.empty())
    throw ConfigError(fmt::format("registry: model '{}' has no versions", ref.model));
  return versions.back();
}

RunSummary summarize_run(const MlflowStore& store, const std::string& run_id) {
  const std::unique_ptr<MlflowRun> run = store.open_run(run_id);
  RunSummary summary;
  summary.info = run->info();
  summary.experiment_name = experiment_name(store, summary.info.experiment_id);
  summary.params = run->params();
  summary.tags = run->tags();
  summary.metrics = run->latest_metrics();
  summary.artifacts = run->artifacts();
  return summary;
}

std::optional<RunSummary> find_run(const MlflowStore& store, const std::string& text) {
  try {
    validate_run_id(text);
    return summarize_run(store, text);
  } catch (const ConfigError&) {
    return std::nullopt;  // not a run id, or no run has it
  }
}

std::vector<RunListing> list_all_runs(const MlflowStore& store) {
  std::vector<RunListing> runs;
  for (const ExperimentInfo& experiment : store.list_experiments())
    for (RunInfo& info : store.list_runs(experiment.experiment_id))
      runs.push_back({std::move(info), experiment.name});
  std::sort(runs.begin(), runs.end(), [](const RunListing& a, const RunListing& b) {
    return std::tie(a.info.start_time_ms, a.info.run_id) <
           std::tie(b.info.start_time_ms, b.info.run_id);
  });
  return runs;
}

std::vector<ModelListing> list_model_summaries(const MlflowStore& store) {
  std::vector<ModelListing> models;
  for (const std::string& name : store.list_models()) {
    ModelListing listing{name};
    const std::vector<ModelVersionInfo> versions = store.list_versions(name);
    listing.versions = versions.size();
    if (!versions.empty()) listing.latest = versions.back().version;
    for (const ModelVersionInfo& version : versions)
      for (const std::string& alias : version.aliases) listing.aliases[alias] = version.version;
    models.push_back(std::move(listing));
  }
  return models;
}

RunDiff diff_runs(const MlflowStore& store, const std::string& left_run,
                  const std::string& right_run) {
  RunDiff diff{summarize_run(store, left_run), summarize_run(store, right_run), {}, {}};
  diff.params = diff_maps(diff.left.params, diff.right.params,
                          [](const std::string& value) { return value; });
  diff.metrics = diff_maps(diff.left.metrics, diff.right.metrics,
                           [](const MetricPoint& point) { return metric_text(point.value); });
  return diff;
}

std::string metric_text(double value) { return detail::format_metric_value(value); }

std::optional<fs::path> model_weights_file(const ModelVersionInfo& version) {
  const std::optional<fs::path> source = path_of_file_uri(version.source);
  if (!source) return std::nullopt;
  const fs::path file = *source / "model.safetensors";
  if (!detail::path_exists(file))
    throw DataError(fmt::format("{}: missing: the weights of {} version {}", file.string(),
                                version.model, version.version));
  return file;
}

std::optional<ModelWeights> read_model_weights(const ModelVersionInfo& version) {
  const std::optional<fs::path> file = model_weights_file(version);
  if (!file) return std::nullopt;
  return ModelWeights{*file, read_safetensors(*file)};
}

}  // namespace kiln::registry
