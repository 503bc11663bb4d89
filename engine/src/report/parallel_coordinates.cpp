// Parallel coordinates: one vertical axis per dimension (linear, log or
// categorical), one polyline per item across them, colored on a sequential scale
// with its legend under the plot. The sweep report draws a trial per line.
#include "report/svg_support.h"

#include <kiln/error.h>
#include <kiln/report/plot.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln::report {
namespace {

using detail::coordinate;
using detail::text_width;
using Scale = ParallelAxis::Scale;

constexpr double kFont = 11, kTop = 58, kBelow = 76, kRightMargin = 40;
constexpr std::string_view kGrey = "#b0b0b0";

// Viridis (van der Walt & Smith, matplotlib 2.0) from light to dark: its stops at
// 0.9, 0.75, 0.5, 0.25 and 0. The scale stops at 0.9 because viridis' last tenth is
// a yellow that vanishes on a white page.
constexpr std::array<detail::Rgb, 5> kSequential = {{{0xbd, 0xdf, 0x26},
                                                     {0x5e, 0xc9, 0x62},
                                                     {0x21, 0x91, 0x8c},
                                                     {0x3b, 0x52, 0x8b},
                                                     {0x44, 0x01, 0x54}}};

// `text` cut to `max_chars` characters (UTF-8 aware, so no character is split)
// with an ellipsis as the last one.
std::string abbreviate(const std::string& text, std::size_t max_chars) {
  std::vector<std::size_t> starts;  // the byte where each character starts
  for (std::size_t i = 0; i < text.size(); ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) starts.push_back(i);
  if (starts.size() <= max_chars || max_chars == 0) return text;
  return text.substr(0, starts[max_chars - 1]) + "\u2026";
}

// How many characters of 11 px text fit in `pixels`.
std::size_t chars_in(double pixels) {
  return static_cast<std::size_t>(std::max(4.0, pixels / text_width("x", kFont)));
}

// An axis as drawn: where a value lands (0 at the bottom, 1 at the top) and its ticks.
struct AxisMap {
  Scale scale = Scale::Linear;
  double low = 0, high = 1;  // of the value, or of its log10 on a log axis
  std::size_t categories = 0;
  std::vector<double> ticks;
  std::vector<std::string> tick_labels;

  std::optional<double> fraction(double value) const {
    if (!std::isfinite(value)) return std::nullopt;
    if (scale == Scale::Categorical) {
      const double index = std::round(value);
      if (index < 0 || index >= static_cast<double>(categories)) return std::nullopt;
      return categories == 1 ? 0.5 : index / static_cast<double>(categories - 1);
    }
    if (scale == Scale::Log) {
      if (value <= 0) return std::nullopt;
      value = std::log10(value);
    }
    return high > low ? (value - low) / (high - low) : 0.5;
  }
};

struct Span {
  double low = std::numeric_limits<double>::infinity();
  double high = -std::numeric_limits<double>::infinity();
  void add(double value) {
    if (!std::isfinite(value)) return;
    low = std::min(low, value);
    high = std::max(high, value);
  }
};

AxisMap map_axis(const ParallelCoordinates& plot, std::size_t index) {
  const ParallelAxis& axis = plot.axes[index];
  AxisMap map{axis.scale};
  if (axis.scale == Scale::Categorical) {
    map.categories = axis.categories.size();
    for (std::size_t c = 0; c < map.categories; ++c) {
      map.ticks.push_back(static_cast<double>(c));
      map.tick_labels.push_back(axis.categories[c]);
    }
    return map;
  }
  const bool log = axis.scale == Scale::Log;
  Span span;
  for (const double bound : {axis.low, axis.high})
    if (!log || bound > 0) span.add(bound);
  for (const auto& line : plot.lines)
    if (!log || line[index] > 0) span.add(line[index]);
  if (span.low > span.high) span = log ? Span{1, 10} : Span{0, 1};
  if (log) {
    map.ticks = log_ticks(span.low, span.high);
    for (const double tick : map.ticks) map.tick_labels.push_back(tick_text(tick, tick));
    map.low = std::log10(map.ticks.front());
    map.high = std::log10(map.ticks.back());
    return map;
  }
  map.ticks = nice_ticks(span.low, span.high, 5);
  const double step = map.ticks.size() > 1 ? map.ticks[1] - map.ticks[0] : 1;
  for (const double tick : map.ticks) map.tick_labels.push_back(tick_text(tick, step));
  map.low = map.ticks.front();
  map.high = map.ticks.back();
  return map;
}

void check_shape(const ParallelCoordinates& plot) {
  const std::size_t lines = plot.lines.size();
  const bool fits =
      std::all_of(plot.lines.begin(), plot.lines.end(),
                  [&](const auto& line) { return line.size() == plot.axes.size(); }) &&
      plot.line_labels.size() == lines && plot.color_values.size() == lines &&
      (!plot.highlighted || *plot.highlighted < lines);
  if (!fits)
    throw InternalError(fmt::format(
        "parallel coordinates '{}': {} lines need {} values each, {} labels and {} colors",
        plot.title, lines, plot.axes.size(), lines, lines));
}

// Where things go: the axes' x positions and the plot's vertical extent.
struct Layout {
  std::vector<double> x;
  double spacing = 0, top = kTop, bottom = 0;
  double y(double fraction) const { return bottom - fraction * (bottom - top); }
  double missing_y() const { return bottom + 16; }
};

Layout layout(const ParallelCoordinates& plot, const std::vector<AxisMap>& maps) {
  Layout at;
  at.bottom = plot.height - kBelow;
  const std::size_t n = plot.axes.size();
  // The first axis' tick labels sit left of it; give them up to 160 px.
  double widest = 0;
  if (n > 0)
    for (const auto& label : maps[0].tick_labels)
      widest = std::max(widest, text_width(label, kFont));
  const double left = std::clamp(widest + 16, 48.0, 160.0);
  const double right = plot.width - kRightMargin;
  at.spacing = n > 1 ? (right - left) / static_cast<double>(n - 1) : right - left;
  for (std::size_t i = 0; i < n; ++i)
    at.x.push_back(n == 1 ? (left + right) / 2 : left + at.spacing * static_cast<double>(i));
  return at;
}

std::string axis_svg(const ParallelAxis& axis, const AxisMap& map, double x, const Layout& at,
                     bool any_missing) {
  const std::size_t label_chars = chars_in(std::min(at.spacing, 220.0) - 8);
  std::string svg = fmt::format(
      "<g class=\"parallel-axis\"><line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" "
      "y2=\"{2}\"/>"
      "<text class=\"axis-label\" x=\"{0}\" y=\"{3}\" text-anchor=\"middle\">{4}"
      "<title>{5}</title></text>",
      coordinate(x), coordinate(at.top), coordinate(at.bottom), coordinate(at.top - 12),
      escape_xml(abbreviate(axis.label, label_chars)), escape_xml(axis.label));
  const std::size_t tick_chars = chars_in(std::min(at.spacing, 160.0) - 14);
  for (std::size_t t = 0; t < map.ticks.size(); ++t) {
    const double y = at.y(*map.fraction(map.ticks[t]));
    svg += fmt::format(
        "<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/>"
        "<text class=\"tick\" x=\"{3}\" y=\"{4}\" text-anchor=\"end\" data-value=\"{5}\">{6}"
        "<title>{7}</title></text>",
        coordinate(x - 4), coordinate(y), coordinate(x), coordinate(x - 6), coordinate(y + 4),
        fmt::format("{:g}", map.ticks[t]), escape_xml(abbreviate(map.tick_labels[t], tick_chars)),
        escape_xml(map.tick_labels[t]));
  }
  if (any_missing)
    svg += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">n/a</text>",
                       coordinate(x - 6), coordinate(at.missing_y() + 4));
  return svg + "</g>";
}

struct ColorScale {
  Span span;
  bool dark_at_low = false;
  std::string operator()(double value) const {
    if (!std::isfinite(value)) return std::string(kGrey);
    const double t = span.high > span.low ? (value - span.low) / (span.high - span.low) : 1.0;
    return detail::color_along(kSequential, dark_at_low ? 1 - t : t);
  }
};

// A bar of 24 swatches from the lowest value (left) to the highest, under the plot.
std::string color_legend(const ParallelCoordinates& plot, const ColorScale& scale) {
  if (scale.span.low > scale.span.high) return "";
  constexpr int kSwatches = 24;
  constexpr double kSwatch = 8;
  const double y = plot.height - 30.0;
  const double label = text_width(plot.color_label, kFont);
  const std::string low = fmt::format("{:.4g}", scale.span.low);
  const double x0 = 16 + label + 10 + text_width(low, kFont) + 6;
  std::string svg = fmt::format(
      "<g class=\"color-legend\"><text class=\"legend\" x=\"16\" y=\"{0}\">{1}</text>"
      "<text class=\"legend\" x=\"{2}\" y=\"{0}\" text-anchor=\"end\">{3}</text>",
      coordinate(y + 9), escape_xml(plot.color_label), coordinate(x0 - 6), low);
  for (int k = 0; k < kSwatches; ++k) {
    const double value =
        scale.span.low + (scale.span.high - scale.span.low) * k / (kSwatches - 1.0);
    svg +=
        fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"10\" fill=\"{}\"/>",
                    coordinate(x0 + kSwatch * k), coordinate(y), coordinate(kSwatch), scale(value));
  }
  return svg + fmt::format("<text class=\"legend\" x=\"{}\" y=\"{}\">{:.4g}</text></g>",
                           coordinate(x0 + kSwatch * kSwatches + 6), coordinate(y + 9),
                           scale.span.high);
}

std::string polyline(const ParallelCoordinates& plot, std::size_t line,
                     const std::vector<AxisMap>& maps, const Layout& at, const ColorScale& color) {
  std::string points;
  for (std::size_t a = 0; a < maps.size(); ++a) {
    const std::optional<double> fraction = maps[a].fraction(plot.lines[line][a]);
    points += fmt::format("{}{},{}", points.empty() ? "" : " ", coordinate(at.x[a]),
                          coordinate(fraction ? at.y(*fraction) : at.missing_y()));
  }
  const bool highlighted = plot.highlighted == line;
  return fmt::format(
      "<polyline class=\"line{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" "
      "stroke-opacity=\"{}\" stroke-linejoin=\"round\"><title>{}</title></polyline>",
      highlighted ? " highlighted" : "", points, color(plot.color_values[line]),
      highlighted ? "3.5" : "1.6", highlighted ? "1" : "0.85", escape_xml(plot.line_labels[line]));
}

}  // namespace

std::vector<double> log_ticks(double low, double high) {
  if (!(low > 0) || !(high >= low) || !std::isfinite(high)) return {};
  // 1e-9 absorbs log10's rounding: log10(1e-3) must give the decade -3, not -2.
  const int first = static_cast<int>(std::floor(std::log10(low) + 1e-9));
  int last = std::max(static_cast<int>(std::ceil(std::log10(high) - 1e-9)), first + 1);
  std::vector<double> ticks;
  if (last - first <= 2) {
    for (int e = first; e < last; ++e)
      for (const double mantissa : {1.0, 2.0, 5.0}) ticks.push_back(mantissa * std::pow(10.0, e));
    ticks.push_back(std::pow(10.0, last));
    return ticks;
  }
  const int stride = (last - first + 7) / 8;  // at most nine labels on a 300 px axis
  last = first + (last - first + stride - 1) / stride * stride;
  for (int e = first; e <= last; e += stride) ticks.push_back(std::pow(10.0, e));
  return ticks;
}

std::string svg_parallel_coordinates(const ParallelCoordinates& plot) {
  check_shape(plot);
  std::vector<AxisMap> maps;
  for (std::size_t a = 0; a < plot.axes.size(); ++a) maps.push_back(map_axis(plot, a));
  const Layout at = layout(plot, maps);
  ColorScale color{{}, plot.dark_at_low};
  for (const double value : plot.color_values) color.span.add(value);

  std::string svg = fmt::format(
      "<svg class=\"parallel\" role=\"img\" aria-label=\"{0}\" width=\"{1}\" height=\"{2}\" "
      "viewBox=\"0 0 {1} {2}\" data-lines=\"{3}\"><text class=\"title\" x=\"16\" "
      "y=\"20\">{0}</text>",
      escape_xml(plot.title), plot.width, plot.height, plot.lines.size());
  for (std::size_t a = 0; a < maps.size(); ++a) {
    const bool any_missing = std::any_of(plot.lines.begin(), plot.lines.end(), [&](const auto& l) {
      return !maps[a].fraction(l[a]).has_value();
    });
    svg += axis_svg(plot.axes[a], maps[a], at.x[a], at, any_missing);
  }
  if (plot.lines.empty() || plot.axes.empty())
    svg += fmt::format("<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                       coordinate(plot.width / 2.0), coordinate((at.top + at.bottom) / 2),
                       plot.axes.empty() ? "no axes" : "no lines");
  for (std::size_t line = 0; line < plot.lines.size(); ++line)
    if (plot.highlighted != line) svg += polyline(plot, line, maps, at, color);
  if (plot.highlighted) svg += polyline(plot, *plot.highlighted, maps, at, color);
  return svg + color_legend(plot, color) + "</svg>";
}

}  // namespace kiln::report
