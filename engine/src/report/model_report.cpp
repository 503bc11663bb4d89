// The model report: every version of a model side by side, with the evaluation
// metrics the register stage copied into its tags (kiln.eval.<metric>).
#include "report/run_data.h"

#include <kiln/clock.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/report/html.h>
#include <kiln/report/plot.h>
#include <kiln/report/report.h>

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <set>

namespace kiln::report {
namespace {

using detail::short_id;
using registry::ModelVersionInfo;
constexpr std::string_view kEvalPrefix = "kiln.eval.";

std::string tag_of(const ModelVersionInfo& version, const std::string& key) {
  const auto it = version.tags.find(key);
  return it == version.tags.end() ? "" : it->second;
}

// NaN when the version lacks the metric or it is not a number: a gap in the plot.
double number_of(const ModelVersionInfo& version, const std::string& key) {
  const std::string text = tag_of(version, key);
  double value = std::nan("");
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() ? value : std::nan("");
}

std::vector<std::string> eval_metrics(const std::vector<ModelVersionInfo>& versions) {
  std::set<std::string> names;
  for (const auto& version : versions)
    for (const auto& [key, value] : version.tags)
      if (key.starts_with(kEvalPrefix)) names.insert(key.substr(kEvalPrefix.size()));
  return {names.begin(), names.end()};
}

void add_versions_table(HtmlPage& page, const std::vector<ModelVersionInfo>& versions,
                        const std::vector<std::string>& metrics) {
  std::vector<std::string> header = {"version", "aliases",       "created",
                                     "run",     "train dataset", "test dataset"};
  header.insert(header.end(), metrics.begin(), metrics.end());
  header.push_back("description");
  std::vector<std::vector<std::string>> rows;
  for (const auto& version : versions) {
    std::vector<std::string> row = {std::to_string(version.version),
                                    fmt::format("{}", fmt::join(version.aliases, ", ")),
                                    iso8601_utc(version.creation_time_ms),
                                    short_id(version.run_id),
                                    short_id(tag_of(version, "kiln.train_dataset")),
                                    short_id(tag_of(version, "kiln.test_dataset"))};
    for (const auto& metric : metrics)
      row.push_back(tag_of(version, std::string(kEvalPrefix) + metric));
    row.push_back(version.description);
    rows.push_back(std::move(row));
  }
  page.table(header, rows);
}

// Scores (accuracy, F1: higher is better) and losses live on different scales:
// one plot each.
std::vector<std::string> version_plots(const std::vector<ModelVersionInfo>& versions,
                                       const std::vector<std::string>& metrics) {
  LinePlot scores{"Scores by version", "version", "score", {}};
  LinePlot losses{"Loss by version", "version", "loss", {}};
  for (const auto& metric : metrics) {
    Series series{"eval/" + metric, {}, SeriesStyle::LineAndPoints};
    for (const auto& version : versions)
      series.points.push_back({static_cast<double>(version.version),
                               number_of(version, std::string(kEvalPrefix) + metric)});
    (metric.find("loss") != std::string::npos ? losses : scores)
        .series.push_back(std::move(series));
  }
  std::vector<std::string> svg;
  for (const LinePlot* plot : {&scores, &losses})
    if (!plot->series.empty()) svg.push_back(svg_line_plot(*plot));
  return svg;
}

std::string aliases_text(const std::vector<ModelVersionInfo>& versions) {
  std::vector<std::string> parts;
  for (const auto& version : versions)
    for (const auto& alias : version.aliases)
      parts.push_back(fmt::format("{} -> version {}", alias, version.version));
  return parts.empty() ? "no aliases" : fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace

std::string render_model_report(const std::filesystem::path& registry_root,
                                const std::string& model) {
  const registry::MlflowStore store(registry_root);
  const std::vector<ModelVersionInfo> versions = store.list_versions(model);
  HtmlPage page("Model " + model,
                fmt::format("kiln model report, {} version(s), {}; made {}", versions.size(),
                            aliases_text(versions), iso8601_utc()));
  const std::vector<std::string> metrics = eval_metrics(versions);
  page.section("Versions");
  if (versions.empty()) {
    page.paragraph("The model has no versions.");
    return page.html();
  }
  add_versions_table(page, versions, metrics);
  std::set<std::string> test_sets;
  for (const auto& version : versions) test_sets.insert(tag_of(version, "kiln.test_dataset"));
  page.section("Evaluation by version");
  if (test_sets.size() > 1)
    page.paragraph(
        fmt::format("The versions were tested on {} different dataset versions: "
                    "compare scores only between versions with the same test dataset.",
                    test_sets.size()));
  if (metrics.empty()) page.paragraph("No version records evaluation metrics.");
  page.figures(version_plots(versions, metrics));
  return page.html();
}

}  // namespace kiln::report
