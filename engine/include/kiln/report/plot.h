// Plots as inline SVG, for kiln's static HTML reports (run, model, sweep): line
// plots with axes, ticks and a legend, heat maps, and parallel coordinates. The
// output is an <svg> element to paste into an HTML page; it references nothing
// outside itself (no fonts, no scripts, no URLs, not even an xmlns: HTML puts
// inline <svg> in the SVG namespace by itself).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::report {

struct Point {
  double x = 0;
  double y = 0;
};

enum class SeriesStyle {
  Line,           // a line through the points
  Points,         // a marker per point
  LineAndPoints,  // both
};

enum class MarkerShape {
  Circle,
  Cross,  // an X: where a pruned trial stopped, in the sweep report
};

struct Series {
  std::string label;
  // In the order given. A NaN or infinite y is a gap: the line stops before it and
  // starts again after it; a point alone between gaps is drawn as a marker.
  std::vector<Point> points;
  SeriesStyle style = SeriesStyle::Line;

  // Looks for plots with many series of a few kinds (a sweep's trials); the
  // defaults draw a run report's curves.
  // The legend's text when it is not `label` (then `label` becomes the curve's
  // tooltip). Series with the same legend text share one legend entry, the first's.
  std::string legend_label = {};
  std::string color = {};  // "#rrggbb"; empty: the palette's color for the series' index
  double line_width = 1.8;
  bool dashed = false;
  MarkerShape marker = MarkerShape::Circle;
  bool mark_last = false;  // a marker on the last finite point, whatever the style
};

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
  // x counts something (steps, versions): ticks at whole numbers only.
  bool whole_x = true;
  int width = 560;
  int height = 320;
};

// The plot as an <svg class="plot"> element with one <path class="curve"> per
// series (also for a series without a finite point: it stays in the legend),
// colored from a fixed palette in series order. Dots are <circle>s.
std::string svg_line_plot(const LinePlot& plot);

struct HeatMap {
  std::string title;
  std::string row_label;     // e.g. "true class"
  std::string column_label;  // e.g. "predicted class"
  std::vector<std::string> rows;
  std::vector<std::string> columns;
  // [row][column]: a cell's color, from white at 0 (or the smallest value, if
  // negative) to dark blue at the largest; NaN leaves the cell grey.
  std::vector<std::vector<double>> values;
  // Optional text of each cell, same shape (e.g. counts while the colors show rates).
  std::vector<std::vector<std::string>> cell_text;
};

// The heat map as an <svg class="heatmap"> with one <rect class="cell"> per cell.
// InternalError when the shapes disagree.
std::string svg_heat_map(const HeatMap& map);

// One vertical axis of a parallel-coordinates plot.
struct ParallelAxis {
  enum class Scale { Linear, Log, Categorical };
  std::string label;
  Scale scale = Scale::Linear;
  // Linear and Log: the range to show (a sweep's search bounds), widened to take in
  // every value and to round ticks. NaN bounds (or, on a log axis, bounds <= 0)
  // leave the range to the values.
  double low = 0, high = 1;
  // Categorical: one tick per category; a line's value is a category's index.
  std::vector<std::string> categories = {};
};

struct ParallelCoordinates {
  std::string title;
  std::vector<ParallelAxis> axes;
  // [line][axis]. A NaN (or a value a log axis cannot show) puts the line's vertex
  // on a "missing" mark under that axis.
  std::vector<std::vector<double>> lines;
  std::vector<std::string> line_labels;  // each line's tooltip, same size as lines
  // Each line's color on a sequential scale from light (lowest) to dark (highest),
  // or dark at the lowest with `dark_at_low`, so that the lines of interest stand
  // out on white; NaN draws the line grey. Same size as lines.
  std::vector<double> color_values;
  std::string color_label;
  bool dark_at_low = false;
  // A line drawn last and thicker (the best trial), if any.
  std::optional<std::size_t> highlighted = std::nullopt;
  int width = 900;
  int height = 380;
};

// The plot as an <svg class="parallel"> with one <polyline class="line"> per line,
// drawn in the order given (later on top), and a color legend. InternalError when
// the shapes disagree.
std::string svg_parallel_coordinates(const ParallelCoordinates& plot);

// Ticks of a log axis: the powers of ten from 10^floor(log10 low) to
// 10^ceil(log10 high), with 2x and 5x between them when that spans at most two
// decades, and only every k-th power when it spans more than eight. Empty unless
// 0 < low <= high, both finite.
std::vector<double> log_ticks(double low, double high);

// Tick positions at 1, 2 or 5 times a power of ten covering [low, high], about
// `target` of them (no step below `min_step` when it is given); and their text,
// with as many digits as the step needs.
std::vector<double> nice_ticks(double low, double high, int target, double min_step = 0);
std::string tick_text(double value, double step);

// Text safe inside an HTML or SVG element or a double-quoted attribute.
std::string escape_xml(std::string_view text);

}  // namespace kiln::report
