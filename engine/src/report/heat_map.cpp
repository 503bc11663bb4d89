// Heat maps (a confusion matrix, say): row labels on the left, column labels
// below (slanted when they would not fit under a cell), a value in each cell.
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

constexpr double kFont = 11, kTop = 34;

void check_shape(const HeatMap& map) {
  const auto fits = [&](const auto& matrix) {
    return matrix.size() == map.rows.size() &&
           std::all_of(matrix.begin(), matrix.end(),
                       [&](const auto& row) { return row.size() == map.columns.size(); });
  };
  if (!fits(map.values) || (!map.cell_text.empty() && !fits(map.cell_text)))
    throw InternalError(fmt::format("heat map '{}': values are not {} x {}", map.title,
                                    map.rows.size(), map.columns.size()));
}

// White (#f7fbff) to dark blue (#08306b), linear in each channel.
std::string blue(double t) {
  static constexpr std::array<detail::Rgb, 2> kStops = {{{0xf7, 0xfb, 0xff}, {0x08, 0x30, 0x6b}}};
  return detail::color_along(kStops, t);
}

struct Scale {
  double low = 0, high = 0;
  double operator()(double value) const { return high > low ? (value - low) / (high - low) : 0; }
};

Scale scale_of(const HeatMap& map) {
  Scale scale{0, -std::numeric_limits<double>::infinity()};
  for (const auto& row : map.values)
    for (const double value : row)
      if (std::isfinite(value)) {
        scale.low = std::min(scale.low, value);
        scale.high = std::max(scale.high, value);
      }
  return scale;
}

std::size_t longest(const std::vector<std::string>& labels) {
  std::size_t size = 0;
  for (const auto& label : labels) size = std::max(size, label.size());
  return size;
}

std::string cell(const HeatMap& map, std::size_t r, std::size_t c, double x, double y, double size,
                 const Scale& scale) {
  const double value = map.values[r][c];
  const bool known = std::isfinite(value);
  const std::string text =
      map.cell_text.empty() ? (known ? fmt::format("{:.3g}", value) : "") : map.cell_text[r][c];
  std::string svg = fmt::format(
      "<rect class=\"cell\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">"
      "<title>{}: {}, {}: {}: {}</title></rect>",
      coordinate(x), coordinate(y), coordinate(size), coordinate(size),
      known ? blue(scale(value)) : "#dddddd", escape_xml(map.row_label), escape_xml(map.rows[r]),
      escape_xml(map.column_label), escape_xml(map.columns[c]), escape_xml(text));
  if (!text.empty() && size >= 14)
    svg += fmt::format(
        "<text class=\"cell-text\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{}\" "
        "fill=\"{}\">{}</text>",
        coordinate(x + size / 2), coordinate(y + size / 2 + 4),
        coordinate(std::min(kFont, size * 0.34)),
        known && scale(value) > 0.55 ? "#ffffff" : "#222222", escape_xml(text));
  return svg;
}

}  // namespace

std::string svg_heat_map(const HeatMap& map) {
  check_shape(map);
  const std::size_t rows = map.rows.size(), columns = map.columns.size();
  const double size = std::clamp(
      400.0 / static_cast<double>(std::max<std::size_t>({rows, columns, 1})), 10.0, 44.0);
  const double left = 30 + text_width(std::string(longest(map.rows), 'x'), kFont) + 8;
  const double column_text = text_width(std::string(longest(map.columns), 'x'), kFont);
  const bool slanted = column_text > size - 4;
  const double below = slanted ? column_text * 0.71 + 18 : 18;  // sin 45 degrees
  const double bottom = kTop + size * static_cast<double>(rows);
  const double width =
      std::max(left + size * static_cast<double>(columns) + 40, left + text_width(map.title, 13));
  const double height = bottom + below + 24;
  const Scale scale = scale_of(map);

  std::string svg = fmt::format(
      "<svg class=\"heatmap\" role=\"img\" aria-label=\"{0}\" width=\"{1}\" height=\"{2}\" "
      "viewBox=\"0 0 {1} {2}\"><text class=\"title\" x=\"{3}\" y=\"20\">{0}</text>",
      escape_xml(map.title), coordinate(width), coordinate(height), coordinate(left));
  for (std::size_t r = 0; r < rows; ++r) {
    const double y = kTop + size * static_cast<double>(r);
    svg += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                       coordinate(left - 6), coordinate(y + size / 2 + 4), escape_xml(map.rows[r]));
    for (std::size_t c = 0; c < columns; ++c)
      svg += cell(map, r, c, left + size * static_cast<double>(c), y, size, scale);
  }
  for (std::size_t c = 0; c < columns; ++c) {
    const double x = left + size * (static_cast<double>(c) + 0.5), y = bottom + 14;
    svg += slanted ? fmt::format(
                         "<text class=\"tick\" x=\"{0}\" y=\"{1}\" text-anchor=\"end\" "
                         "transform=\"rotate(-45 {0} {1})\">{2}</text>",
                         coordinate(x + 4), coordinate(y - 4), escape_xml(map.columns[c]))
                   : fmt::format(
                         "<text class=\"tick\" x=\"{}\" y=\"{}\" "
                         "text-anchor=\"middle\">{}</text>",
                         coordinate(x), coordinate(y), escape_xml(map.columns[c]));
  }
  const double middle_y = (kTop + bottom) / 2;
  svg += fmt::format(
      "<text class=\"axis-label\" x=\"{0}\" y=\"{1}\" text-anchor=\"middle\">{2}</text>"
      "<text class=\"axis-label\" x=\"14\" y=\"{3}\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 14 {3})\">{4}</text>",
      coordinate(left + size * static_cast<double>(columns) / 2), coordinate(height - 8),
      escape_xml(map.column_label), coordinate(middle_y), escape_xml(map.row_label));
  return svg + "</svg>";
}

}  // namespace kiln::report
