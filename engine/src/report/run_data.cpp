#include "report/run_data.h"

#include <kiln/fs.h>

#include <fmt/format.h>

#include <algorithm>

namespace kiln::report::detail {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kEvaluationDir = "evaluation/";

std::vector<Evaluation> read_evaluations(const RunData& run) {
  std::vector<Evaluation> evaluations;
  for (const std::string& artifact : run.summary.artifacts) {
    const fs::path relative(artifact);
    if (!artifact.starts_with(kEvaluationDir) || relative.extension() != ".json" ||
        relative.parent_path() != "evaluation")
      continue;
    Evaluation evaluation{relative.stem().string(), nullptr, ""};
    const fs::path file = run.directory / "artifacts" / relative;
    try {
      evaluation.data = nlohmann::json::parse(read_file(file));
    } catch (const std::exception& error) {
      evaluation.error = fmt::format("{}: {}", file.string(), error.what());
    }
    evaluations.push_back(std::move(evaluation));
  }
  return evaluations;
}

std::vector<registry::ModelVersionInfo> versions_of(const registry::MlflowStore& store,
                                                    const std::string& run_id) {
  std::vector<registry::ModelVersionInfo> found;
  for (const std::string& model : store.list_models())
    for (registry::ModelVersionInfo& version : store.list_versions(model)) {
      const auto trained = version.tags.find("kiln.train_run_id");
      if (version.run_id == run_id || (trained != version.tags.end() && trained->second == run_id))
        found.push_back(std::move(version));
    }
  return found;
}

}  // namespace

RunData load_run_data(const registry::MlflowStore& store, const std::string& run_id) {
  RunData run;
  run.summary = registry::summarize_run(store, run_id);
  const auto handle = store.open_run(run_id);
  run.directory = handle->directory();
  for (const auto& [key, latest] : run.summary.metrics) {
    std::vector<registry::MetricPoint> points = handle->metric_history(key);
    std::stable_sort(points.begin(), points.end(),
                     [](const auto& a, const auto& b) { return a.step < b.step; });
    run.history[key] = std::move(points);
  }
  run.evaluations = read_evaluations(run);
  run.versions = versions_of(store, run_id);
  return run;
}

std::string duration_text(std::int64_t milliseconds) {
  const double seconds = static_cast<double>(milliseconds) / 1000.0;
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  const std::int64_t whole = milliseconds / 1000;
  if (whole < 3600) return fmt::format("{} min {} s", whole / 60, whole % 60);
  return fmt::format("{} h {} min", whole / 3600, whole % 3600 / 60);
}

std::string short_id(const std::string& id) { return id.substr(0, 12); }

}  // namespace kiln::report::detail
