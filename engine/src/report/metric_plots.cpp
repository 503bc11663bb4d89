// Which metrics share a plot is decided by the last part of their key, so that
// train/loss, eval/loss and val/loss land together whatever stage logged them.
#include "report/metric_plots.h"

#include <kiln/report/plot.h>

#include <algorithm>
#include <set>

namespace kiln::report::detail {
namespace {

using registry::MetricPoint;

struct Group {
  std::string_view title;
  std::string_view y_label;
  std::vector<std::string_view> names;  // last parts of the keys it plots
};

const std::vector<Group>& groups() {
  static const std::vector<Group> kGroups = {
      {"Loss", "loss", {"loss"}},
      {"Accuracy", "accuracy", {"accuracy"}},
      {"Learning rate", "learning rate", {"lr", "learning_rate"}},
      {"Throughput", "samples / s", {"samples_per_s"}},
      {"Step time and data wait", "ms per step", {"step_ms", "data_wait_ms"}},
  };
  return kGroups;
}

// Keys that carry no picture of their own: the epoch counter rises in steps.
bool skipped(std::string_view name) { return name == "epoch"; }

std::string_view last_part(std::string_view key) {
  const std::size_t slash = key.rfind('/');
  return slash == std::string_view::npos ? key : key.substr(slash + 1);
}

std::int64_t last_step(const std::vector<MetricPoint>& points) {
  return points.empty() ? 0 : points.back().step;
}

// A metric logged once at step 0 next to curves that go further is a measurement
// of the finished model (the evaluate stage logs eval/* that way): it is drawn as a
// dot at the last step of the others, and says so.
Series to_series(const std::string& key, const std::vector<MetricPoint>& points,
                 std::int64_t group_last_step) {
  Series series{key, {}, points.size() == 1 ? SeriesStyle::Points : SeriesStyle::Line};
  const bool final_model = points.size() == 1 && points[0].step == 0 && group_last_step > 0;
  if (final_model) series.label += " (final model)";
  for (const MetricPoint& point : points)
    series.points.push_back(
        {static_cast<double>(final_model ? group_last_step : point.step), point.value});
  return series;
}

LinePlot plot_of(std::string_view title, std::string_view y_label,
                 const std::vector<std::string>& keys, const RunData& run) {
  std::int64_t group_last_step = 0;
  for (const std::string& key : keys)
    group_last_step = std::max(group_last_step, last_step(run.history.at(key)));
  LinePlot plot{std::string(title), "step", std::string(y_label), {}};
  for (const std::string& key : keys)
    plot.series.push_back(to_series(key, run.history.at(key), group_last_step));
  return plot;
}

}  // namespace

std::vector<std::string> metric_plots(const RunData& run) {
  std::vector<std::string> svg;
  std::set<std::string> plotted;
  for (const Group& group : groups()) {
    std::vector<std::string> keys;
    for (const auto& [key, points] : run.history)
      if (std::find(group.names.begin(), group.names.end(), last_part(key)) != group.names.end())
        keys.push_back(key);
    if (keys.empty()) continue;
    // Curves before single points, so the training curve takes the first color.
    std::stable_sort(keys.begin(), keys.end(), [&](const std::string& a, const std::string& b) {
      return run.history.at(a).size() > run.history.at(b).size();
    });
    plotted.insert(keys.begin(), keys.end());
    svg.push_back(svg_line_plot(plot_of(group.title, group.y_label, keys, run)));
  }
  for (const auto& [key, points] : run.history)
    if (!plotted.contains(key) && points.size() > 1 && !skipped(last_part(key)))
      svg.push_back(svg_line_plot(plot_of(key, last_part(key), {key}, run)));
  return svg;
}

}  // namespace kiln::report::detail
