// Reading a run's params, tags, metrics and artifacts back, as MLflow's file store
// reads them (FileStore._get_metric_from_line, _get_metric_from_file).
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/names.h>

#include "registry/store_files.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <tuple>

namespace kiln::registry {
namespace fs = std::filesystem;
using namespace detail;

namespace {

// `within` is the run's directory, checked when the run was opened.
std::map<std::string, std::string> read_entries(const fs::path& within, const fs::path& dir) {
  std::map<std::string, std::string> entries;
  for (const std::string& key : files_below(dir)) entries[key] = read_within(within, dir / key);
  return entries;
}

template <class Number>
bool parse_field(std::string_view text, Number& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

// "<ms> <value> <step>"; MLflow also reads "<ms> <value>" (step 0) from old stores.
std::optional<MetricPoint> parse_metric_line(std::string_view line) {
  std::vector<std::string_view> fields;
  while (!line.empty()) {
    const std::size_t space = line.find(' ');
    fields.push_back(line.substr(0, space));
    line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  }
  MetricPoint point;
  if (fields.size() < 2 || fields.size() > 3) return std::nullopt;
  if (!parse_field(fields[0], point.timestamp_ms)) return std::nullopt;
  // from_chars reads "nan", "inf" and "-inf", as Python's float() does.
  if (!parse_field(fields[1], point.value)) return std::nullopt;
  if (fields.size() == 3 && !parse_field(fields[2], point.step)) return std::nullopt;
  return point;
}

// MLflow's order for "the latest": largest (step, timestamp, value).
bool later(const MetricPoint& a, const MetricPoint& b) {
  return std::tie(a.step, a.timestamp_ms) > std::tie(b.step, b.timestamp_ms) ||
         (std::tie(a.step, a.timestamp_ms) == std::tie(b.step, b.timestamp_ms) &&
          a.value > b.value);
}

}  // namespace

std::map<std::string, std::string> MlflowRun::params() const {
  return read_entries(directory_, directory_ / "params");
}

std::map<std::string, std::string> MlflowRun::tags() const {
  return read_entries(directory_, directory_ / "tags");
}

std::vector<MetricPoint> MlflowRun::metric_history(std::string_view key) const {
  validate_key("metric key", key);
  const fs::path file = directory_ / "metrics" / key;
  std::vector<MetricPoint> points;
  const std::string text = read_within(directory_, file);
  std::size_t start = 0, number = 1;
  for (; start < text.size(); ++number) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + start, end - start);
    const auto point = parse_metric_line(line);
    if (!point)
      throw DataError(fmt::format("{}:{}: not a metric line '<ms> <value> <step>': '{}'",
                                  file.string(), number, line));
    points.push_back(*point);
    start = end + 1;
  }
  return points;
}

std::map<std::string, MetricPoint> MlflowRun::latest_metrics() const {
  std::map<std::string, MetricPoint> latest;
  for (const std::string& key : files_below(directory_ / "metrics")) {
    const std::vector<MetricPoint> points = metric_history(key);
    if (points.empty()) continue;
    MetricPoint best = points.front();
    for (const MetricPoint& point : points)
      if (later(point, best)) best = point;
    latest[key] = best;
  }
  return latest;
}

std::vector<std::string> MlflowRun::artifacts() const {
  return files_below(directory_ / "artifacts");
}

}  // namespace kiln::registry
