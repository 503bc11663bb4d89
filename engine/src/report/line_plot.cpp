// Line plots: title, legend (wrapped over as many rows as it needs), plot area
// with grid, ticks and axis labels, then one path per series.
#include "report/svg_support.h"

#include <kiln/report/plot.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <set>

namespace kiln::report {
namespace {

using detail::coordinate;
using detail::palette_color;
using detail::text_width;

constexpr double kFont = 11, kLegendRow = 16;
constexpr double kLegendLeft = 62, kRight = 18, kBottom = 42;

struct Range {
  double low = std::numeric_limits<double>::infinity();
  double high = -std::numeric_limits<double>::infinity();
  void add(double value) {
    low = std::min(low, value);
    high = std::max(high, value);
  }
  bool empty() const { return low > high; }
};

bool finite(const Point& point) { return std::isfinite(point.x) && std::isfinite(point.y); }

struct Axis {
  std::vector<double> ticks;
  double low = 0, high = 1, step = 1;
};

Axis make_axis(Range range, int target, double min_step) {
  if (range.empty()) range = {0, 1};
  Axis axis;
  axis.ticks = nice_ticks(range.low, range.high, target, min_step);
  axis.low = axis.ticks.front();
  axis.high = axis.ticks.back();
  axis.step = axis.ticks.size() > 1 ? axis.ticks[1] - axis.ticks[0] : 1;
  return axis;
}

// Room for the y label and the widest tick label.
double left_margin(const Axis& y) {
  double widest = 0;
  for (const double tick : y.ticks)
    widest = std::max(widest, text_width(tick_text(tick, y.step), kFont));
  return std::max(kLegendLeft, 30 + widest);
}

// Maps data to pixels inside the plot area.
struct Frame {
  double left, top, right, bottom;
  Axis x, y;
  double px(double value) const {
    return left + (value - x.low) / (x.high - x.low) * (right - left);
  }
  double py(double value) const {
    return bottom - (value - y.low) / (y.high - y.low) * (bottom - top);
  }
};

std::string_view color_of(const Series& series, std::size_t index) {
  return series.color.empty() ? palette_color(index) : std::string_view(series.color);
}

// A shared entry names a kind of series, so it takes no "(no finite values)" from
// the one series that happens to come first.
std::string legend_text(const Series& series) {
  const bool any = std::any_of(series.points.begin(), series.points.end(), finite);
  const std::string& text = series.legend_label.empty() ? series.label : series.legend_label;
  return any || !series.legend_label.empty() ? text : text + " (no finite values)";
}

std::string dash(const Series& series) { return series.dashed ? " stroke-dasharray=\"5 3\"" : ""; }

// A dot or an X centred on (x, y).
std::string marker(MarkerShape shape, double x, double y, std::string_view color) {
  if (shape == MarkerShape::Circle)
    return fmt::format("<circle class=\"marker\" cx=\"{}\" cy=\"{}\" r=\"3.2\" fill=\"{}\"/>",
                       coordinate(x), coordinate(y), color);
  return fmt::format(
      "<path class=\"marker cross\" d=\"M{0} {1} L{2} {3} M{0} {3} L{2} {1}\" stroke=\"{4}\" "
      "stroke-width=\"2\" fill=\"none\"/>",
      coordinate(x - 3.5), coordinate(y - 3.5), coordinate(x + 3.5), coordinate(y + 3.5), color);
}

// A series of X markers shows an X: the X is what tells its points apart. Any
// other shows a stroke in its color and dash, a little wider than its line.
std::string swatch(const Series& series, std::size_t index, double x, double y) {
  const std::string_view color = color_of(series, index);
  if (series.style == SeriesStyle::Points && series.marker != MarkerShape::Circle)
    return marker(series.marker, x + 8, y, color);
  return fmt::format(
      "<line class=\"legend-swatch\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
      "stroke-width=\"{:g}\"{}/>",
      coordinate(x), coordinate(y), coordinate(x + 16), coordinate(y), color,
      std::max(3.0, series.line_width + 1.2), dash(series));
}

// Legend entries flow left to right and wrap; returns the markup and the height used.
std::pair<std::string, double> legend(const LinePlot& plot, double top) {
  std::string svg;
  std::set<std::string> shown;
  double x = kLegendLeft, y = top;
  for (std::size_t i = 0; i < plot.series.size(); ++i) {
    const std::string label = legend_text(plot.series[i]);
    if (!shown.insert(label).second) continue;
    const double width = 22 + text_width(label, kFont) + 14;
    if (x + width > plot.width - kRight && x > kLegendLeft) {
      x = kLegendLeft;
      y += kLegendRow;
    }
    svg += swatch(plot.series[i], i, x, y - 4) +
           fmt::format("<text class=\"legend\" x=\"{}\" y=\"{}\">{}</text>", coordinate(x + 22),
                       coordinate(y), escape_xml(label));
    x += width;
  }
  return {svg, plot.series.empty() ? 0 : y - top + kLegendRow};
}

std::string grid_and_axes(const Frame& frame, const LinePlot& plot) {
  std::string svg;
  for (const double tick : frame.y.ticks) {
    const std::string y = coordinate(frame.py(tick));
    svg += fmt::format(
        "<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>"
        "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        coordinate(frame.left), y, coordinate(frame.right), y, coordinate(frame.left - 6),
        coordinate(frame.py(tick) + 4), tick_text(tick, frame.y.step));
  }
  for (const double tick : frame.x.ticks) {
    const std::string x = coordinate(frame.px(tick));
    svg += fmt::format(
        "<line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>"
        "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        x, coordinate(frame.bottom), x, coordinate(frame.bottom + 4), x,
        coordinate(frame.bottom + 16), tick_text(tick, frame.x.step));
  }
  svg += fmt::format(
      "<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>"
      "<line class=\"axis\" x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\"/>",
      coordinate(frame.left), coordinate(frame.top), coordinate(frame.bottom),
      coordinate(frame.right));
  svg +=
      fmt::format("<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                  coordinate((frame.left + frame.right) / 2), coordinate(plot.height - 6),
                  escape_xml(plot.x_label));
  const double middle = (frame.top + frame.bottom) / 2;
  svg += fmt::format(
      "<text class=\"axis-label\" x=\"14\" y=\"{0}\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 14 {0})\">{1}</text>",
      coordinate(middle), escape_xml(plot.y_label));
  return svg;
}

// "M x y L x y ..." with a new "M" after every gap, and the points that end up
// alone between gaps (they would be invisible as a line).
std::pair<std::string, std::vector<Point>> trace(const Series& series, const Frame& frame) {
  std::string d;
  std::vector<Point> lonely;
  const auto& points = series.points;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (!finite(points[i])) continue;
    const bool starts = i == 0 || !finite(points[i - 1]);
    const bool ends = i + 1 == points.size() || !finite(points[i + 1]);
    d += fmt::format("{}{} {} ", starts ? "M" : "L", coordinate(frame.px(points[i].x)),
                     coordinate(frame.py(points[i].y)));
    if (starts && ends) lonely.push_back(points[i]);
  }
  if (!d.empty()) d.pop_back();
  return {d, lonely};
}

std::string curve(const Series& series, std::size_t index, const Frame& frame) {
  auto [d, dots] = trace(series, frame);
  const bool line = series.style != SeriesStyle::Points;
  if (series.style != SeriesStyle::Line) {
    dots.clear();
    std::copy_if(series.points.begin(), series.points.end(), std::back_inserter(dots), finite);
  }
  if (series.mark_last) {
    const auto last = std::find_if(series.points.rbegin(), series.points.rend(), finite);
    if (last != series.points.rend() &&
        (dots.empty() || dots.back().x != last->x || dots.back().y != last->y))
      dots.push_back(*last);
  }
  const std::string_view color = color_of(series, index);
  // A series whose label is not in the legend keeps it as a tooltip.
  const std::string tooltip = series.legend_label.empty()
                                  ? std::string()
                                  : "<title>" + escape_xml(series.label) + "</title>";
  std::string svg = fmt::format(
      "<path class=\"curve\" data-label=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{}\" "
      "stroke-width=\"{}\" stroke-linejoin=\"round\" stroke-linecap=\"round\"{}{}",
      escape_xml(series.label), d, color, line ? coordinate(series.line_width) : "0", dash(series),
      tooltip.empty() ? "/>" : ">" + tooltip + "</path>");
  for (const Point& point : dots)
    svg += marker(series.marker, frame.px(point.x), frame.py(point.y), color);
  return svg;
}

}  // namespace

std::string svg_line_plot(const LinePlot& plot) {
  Range xs, ys;
  for (const Series& series : plot.series)
    for (const Point& point : series.points)
      if (finite(point)) {
        xs.add(point.x);
        ys.add(point.y);
      }
  auto [legend_svg, legend_height] = legend(plot, 40);
  const Axis y_axis = make_axis(ys, 5, 0);
  Frame frame{left_margin(y_axis),
              40 + legend_height,
              plot.width - kRight,
              plot.height - kBottom,
              make_axis(xs, 6, plot.whole_x ? 1 : 0),
              y_axis};
  std::string svg = fmt::format(
      "<svg class=\"plot\" role=\"img\" aria-label=\"{0}\" width=\"{1}\" height=\"{2}\" "
      "viewBox=\"0 0 {1} {2}\" data-curves=\"{3}\">"
      "<text class=\"title\" x=\"{4}\" y=\"20\">{0}</text>",
      escape_xml(plot.title), plot.width, plot.height, plot.series.size(), coordinate(kLegendLeft));
  svg += legend_svg + grid_and_axes(frame, plot);
  if (ys.empty())
    svg += fmt::format(
        "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no finite "
        "values</text>",
        coordinate((frame.left + frame.right) / 2), coordinate((frame.top + frame.bottom) / 2));
  for (std::size_t i = 0; i < plot.series.size(); ++i) svg += curve(plot.series[i], i, frame);
  return svg + "</svg>";
}

}  // namespace kiln::report
