// The run report: overview, metric plots and final values, evaluations, data and
// lineage, params and tags.
#include "report/evaluation_section.h"
#include "report/metric_plots.h"
#include "report/run_data.h"

#include <kiln/clock.h>
#include <kiln/fs.h>
#include <kiln/report/html.h>
#include <kiln/report/report.h>

#include <fmt/format.h>

#include <cmath>

namespace kiln::report {
namespace {

using detail::RunData;
using Rows = std::vector<std::vector<std::string>>;

std::string tag(const RunData& run, const std::string& key) {
  const auto it = run.summary.tags.find(key);
  return it == run.summary.tags.end() ? "" : it->second;
}

// Tags "<prefix><name>" as rows {name, value}.
Rows tags_under(const RunData& run, std::string_view prefix) {
  Rows rows;
  for (const auto& [key, value] : run.summary.tags)
    if (key.starts_with(prefix)) rows.push_back({key.substr(prefix.size()), value});
  return rows;
}

void add_overview(HtmlPage& page, const RunData& run) {
  const registry::RunInfo& info = run.summary.info;
  page.section("Run");
  const Rows candidates = {
      {"run id", info.run_id},
      {"run name", info.run_name},
      {"experiment", fmt::format("{} (id {})", run.summary.experiment_name, info.experiment_id)},
      {"status", registry::to_string(info.status)},
      {"user", info.user},
      {"started", iso8601_utc(info.start_time_ms)},
      {"ended", info.end_time_ms ? iso8601_utc(*info.end_time_ms) : "not yet"},
      {"duration",
       info.end_time_ms ? detail::duration_text(*info.end_time_ms - info.start_time_ms) : ""},
      {"parent run", info.parent_run_id},
      {"pipeline", tag(run, "kiln.pipeline")},
      {"git commit", tag(run, "mlflow.source.git.commit")},
      {"kiln version", tag(run, "kiln.version")},
      {"host", tag(run, "kiln.host")},
      {"GPU", tag(run, "kiln.gpu.model")},
      {"run directory", run.directory.string()},
  };
  Rows rows;
  for (const auto& row : candidates)
    if (!row[1].empty()) rows.push_back(row);
  page.table({}, rows);
}

void add_metrics(HtmlPage& page, const RunData& run) {
  page.section("Metrics");
  if (run.history.empty()) {
    page.paragraph("No metrics were logged in this run.");
    return;
  }
  page.figures(detail::metric_plots(run));
  Rows rows;
  for (const auto& [key, points] : run.history) {
    const registry::MetricPoint& final_point = run.summary.metrics.at(key);
    const auto gaps = std::count_if(points.begin(), points.end(),
                                    [](const auto& point) { return !std::isfinite(point.value); });
    rows.push_back({key, registry::metric_text(final_point.value), std::to_string(final_point.step),
                    std::to_string(points.size()), std::to_string(gaps)});
  }
  page.paragraph("Final values (the point at the largest step, as MLflow reports them):");
  page.table({"metric", "final value", "at step", "points", "not finite"}, rows);
}

Rows model_version_rows(const RunData& run) {
  Rows rows;
  for (const registry::ModelVersionInfo& version : run.versions) {
    const auto version_tag = [&](const char* key) {
      const auto it = version.tags.find(key);
      return it == version.tags.end() ? std::string() : it->second;
    };
    const bool registered = version.run_id == run.summary.info.run_id;
    rows.push_back({version.model, std::to_string(version.version),
                    fmt::format("{}", fmt::join(version.aliases, ", ")),
                    registered ? "registered by this run" : "trained by this run",
                    detail::short_id(version_tag("kiln.train_dataset")),
                    detail::short_id(version_tag("kiln.test_dataset")),
                    detail::short_id(version_tag("kiln.model_sha256"))});
  }
  return rows;
}

void add_lineage(HtmlPage& page, const RunData& run) {
  page.section("Data and lineage");
  const Rows datasets = tags_under(run, "kiln.dataset.");
  if (datasets.empty())
    page.paragraph("No dataset versions recorded.");
  else
    page.table({"stage", "dataset version"}, datasets);
  Rows stages;
  for (const auto& row : tags_under(run, "kiln.stage.")) {
    const std::size_t space = row[1].find(' ');
    stages.push_back({row[0], row[1].substr(0, space),
                      space == std::string::npos ? "" : row[1].substr(space + 1)});
  }
  if (!stages.empty()) page.table({"stage", "status", "step cache key"}, stages);
  const Rows versions = model_version_rows(run);
  if (!versions.empty())
    page.table({"model", "version", "aliases", "this run", "train dataset", "test dataset",
                "weights sha256"},
               versions);
  const bool tensorboard =
      std::any_of(run.summary.artifacts.begin(), run.summary.artifacts.end(),
                  [](const auto& file) { return file.starts_with("tensorboard/"); });
  if (tensorboard)
    page.paragraph(fmt::format("TensorBoard scalars: tensorboard --logdir {}",
                               (run.directory / "artifacts" / "tensorboard").string()));
}

void add_key_values(HtmlPage& page, std::string_view heading,
                    const std::map<std::string, std::string>& entries) {
  page.section(heading);
  Rows rows;
  for (const auto& [key, value] : entries) rows.push_back({key, value});
  if (rows.empty())
    page.paragraph("None.");
  else
    page.table({"key", "value"}, rows);
}

}  // namespace

std::string render_run_report(const std::filesystem::path& registry_root,
                              const std::string& run_id) {
  const registry::MlflowStore store(registry_root);
  const RunData run = detail::load_run_data(store, run_id);
  HtmlPage page("Run " + run.summary.info.run_name,
                fmt::format("kiln run report, {} in experiment '{}', made {}", run_id,
                            run.summary.experiment_name, iso8601_utc()));
  add_overview(page, run);
  add_metrics(page, run);
  detail::add_evaluations(page, run);
  add_lineage(page, run);
  add_key_values(page, "Parameters", run.summary.params);
  add_key_values(page, "Tags", run.summary.tags);
  return page.html();
}

void write_run_report(const std::filesystem::path& registry_root, const std::string& run_id,
                      const std::filesystem::path& path) {
  write_file_atomic(path, render_run_report(registry_root, run_id));
}

}  // namespace kiln::report
