// The sweep report's figures: objective by trial, parallel coordinates of the
// parameters, and the intermediate curves. Only finite numbers reach a plot.
#include "report/sweep_plots.h"

#include <kiln/report/plot.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln::report::detail {
namespace {

using sweep::Direction;
using sweep::Trial;
using sweep::TrialState;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Colors of the kinds of trial (Okabe & Ito, as the palette): blue for the best,
// vermilion for pruned, a neutral grey for the other complete ones so that the two
// that matter stand out.
constexpr std::string_view kBestColor = "#0072b2", kPrunedColor = "#d55e00",
                           kCompleteColor = "#8c96a0", kRunningColor = "#009e73",
                           kFailedColor = "#cc79a7";

bool finite_value(const Trial& trial) {
  return trial.state == TrialState::Complete && trial.value && std::isfinite(*trial.value);
}

// A pruned trial's last finite intermediate value, placed at its trial number.
std::optional<Point> last_reported(const Trial& trial) {
  for (auto it = trial.intermediate.rbegin(); it != trial.intermediate.rend(); ++it)
    if (std::isfinite(it->second)) return Point{static_cast<double>(trial.number), it->second};
  return std::nullopt;
}

// The best objective so far as a step line over the complete trials' numbers,
// running on to `last_number` so that it spans the whole plot.
Series running_best(const sweep::Study& study, int last_number) {
  Series best{"best so far", {}, SeriesStyle::Line};
  best.color = "#000000";
  best.line_width = 1.2;
  for (const Trial& trial : study.trials) {
    if (!finite_value(trial)) continue;
    const double x = trial.number, value = *trial.value;
    if (best.points.empty()) {
      best.points.push_back({x, value});
    } else if (sweep::better(study.direction, value, best.points.back().y)) {
      best.points.push_back({x, best.points.back().y});
      best.points.push_back({x, value});
    }
  }
  if (!best.points.empty() && best.points.back().x < last_number)
    best.points.push_back({static_cast<double>(last_number), best.points.back().y});
  return best;
}

std::string_view state_color(const Trial& trial, const Trial* best) {
  if (&trial == best) return kBestColor;
  switch (trial.state) {
    case TrialState::Complete:
      return kCompleteColor;
    case TrialState::Pruned:
      return kPrunedColor;
    case TrialState::Fail:
      return kFailedColor;
    default:
      return kRunningColor;
  }
}

std::string_view state_legend(const Trial& trial) {
  switch (trial.state) {
    case TrialState::Complete:
      return "complete";
    case TrialState::Pruned:
      return "pruned (\u2715 where it stopped)";
    case TrialState::Fail:
      return "failed";
    default:
      return "running";
  }
}

// Where a trial's value sits on the parameter's axis: the number itself, or a
// choice's index among every choice seen; NaN when the trial did not sample it.
double axis_value(const Trial& trial, const SweepParameter& parameter) {
  const nlohmann::json value = external_value(trial, parameter);
  if (value.is_null()) return kNaN;
  if (parameter.kind != SweepParameter::Kind::Categorical)
    return value.is_number() ? value.get<double>() : kNaN;
  const auto it = std::find(parameter.choices.begin(), parameter.choices.end(), value);
  return it == parameter.choices.end() ? kNaN : static_cast<double>(it - parameter.choices.begin());
}

ParallelAxis axis_of(const SweepParameter& parameter) {
  ParallelAxis axis{parameter.display};
  if (parameter.kind == SweepParameter::Kind::Categorical) {
    axis.scale = ParallelAxis::Scale::Categorical;
    // Structured choices (a model's layers as JSON text) share long prefixes, so an
    // abbreviated tick would not tell them apart: each starts with its index.
    for (std::size_t i = 0; i < parameter.choices.size(); ++i) {
      const std::string text = value_text(parameter.choices[i]);
      const bool structured = !text.empty() && (text.front() == '{' || text.front() == '[');
      axis.categories.push_back(structured ? fmt::format("#{} {}", i, text) : text);
    }
    return axis;
  }
  axis.scale = parameter.log ? ParallelAxis::Scale::Log : ParallelAxis::Scale::Linear;
  axis.low = parameter.low;
  axis.high = parameter.high;
  return axis;
}

}  // namespace

std::string objective_by_trial_plot(const SweepReportInput& input) {
  const sweep::Study& study = input.study;
  Series complete{"complete", {}, SeriesStyle::Points};
  complete.color = kBestColor;
  Series pruned{"pruned (last reported value)", {}, SeriesStyle::Points};
  pruned.color = kPrunedColor;
  pruned.marker = MarkerShape::Cross;
  int last_number = 0;
  for (const Trial& trial : study.trials) {
    if (finite_value(trial)) {
      complete.points.push_back({static_cast<double>(trial.number), *trial.value});
    } else if (trial.state == TrialState::Pruned) {
      if (const auto point = last_reported(trial)) pruned.points.push_back(*point);
    } else {
      continue;
    }
    last_number = std::max(last_number, trial.number);
  }
  LinePlot plot{"Objective by trial", "trial", input.objective, {}};
  plot.series = {complete, pruned, running_best(study, last_number)};
  return svg_line_plot(plot);
}

std::string parameters_plot(const SweepReportInput& input,
                            const std::vector<SweepParameter>& parameters) {
  const sweep::Study& study = input.study;
  std::vector<const Trial*> trials;
  for (const Trial& trial : study.trials)
    if (finite_value(trial)) trials.push_back(&trial);
  if (trials.empty()) return "";
  // Worst first, so that the better trials are drawn over the rest.
  std::stable_sort(trials.begin(), trials.end(), [&](const Trial* a, const Trial* b) {
    return sweep::better(study.direction, *b->value, *a->value);
  });
  ParallelCoordinates plot{"Parameters of the complete trials", {}, {}, {}, {}, input.objective};
  for (const SweepParameter& parameter : parameters) plot.axes.push_back(axis_of(parameter));
  ParallelAxis objective{input.objective, ParallelAxis::Scale::Linear, kNaN, kNaN};
  plot.axes.push_back(objective);
  for (const Trial* trial : trials) {
    std::vector<double> line;
    for (const SweepParameter& parameter : parameters)
      line.push_back(axis_value(*trial, parameter));
    line.push_back(*trial->value);
    plot.lines.push_back(std::move(line));
    plot.line_labels.push_back(
        fmt::format("trial {}: {} {}", trial->number, input.objective, number_text(*trial->value)));
    plot.color_values.push_back(*trial->value);
  }
  plot.dark_at_low = study.direction == Direction::Minimize;  // the best is the darkest
  plot.highlighted = trials.size() - 1;                       // the best, drawn last
  plot.width = std::clamp(170 * static_cast<int>(plot.axes.size()), 560, 1140);
  return svg_parallel_coordinates(plot);
}

std::string intermediate_plot(const SweepReportInput& input) {
  const sweep::Study& study = input.study;
  const Trial* best = study.best_trial();
  LinePlot plot{"Objective by epoch", "epoch", input.objective, {}};
  std::optional<Series> best_series;
  for (const Trial& trial : study.trials) {
    if (trial.intermediate.empty()) continue;
    Series series{fmt::format("trial {} ({})", trial.number, sweep::to_string(trial.state)), {}};
    for (const auto& [epoch, value] : trial.intermediate)
      series.points.push_back({static_cast<double>(epoch), value});
    series.color = state_color(trial, best);
    series.legend_label = std::string(state_legend(trial));
    series.line_width = 1.3;
    if (trial.state == TrialState::Pruned) {
      series.dashed = true;
      series.marker = MarkerShape::Cross;
      series.mark_last = true;
    }
    if (&trial == best) {
      series.legend_label = fmt::format("best: trial {}", trial.number);
      series.line_width = 3;
      best_series = std::move(series);  // drawn last, over the others
      continue;
    }
    plot.series.push_back(std::move(series));
  }
  if (best_series) plot.series.push_back(std::move(*best_series));
  return plot.series.empty() ? "" : svg_line_plot(plot);
}

}  // namespace kiln::report::detail
