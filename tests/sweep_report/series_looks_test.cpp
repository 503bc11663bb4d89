// The line plot's looks for many series of a few kinds (the sweep report's
// trials): colors, dashes, X markers, the last point marked, a shared legend entry.
// Here rather than in tests/report/ so that they build without the CLI.
#include <kiln/report/plot.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "sweep_report/page_parts.h"

namespace kiln::report {
namespace {

using test::count_of;
using ::testing::HasSubstr;
using ::testing::Not;

Series trial(std::string label, std::string legend, std::vector<Point> points) {
  Series series{std::move(label), std::move(points)};
  series.legend_label = std::move(legend);
  series.color = "#8c96a0";
  return series;
}

TEST(SeriesLooks, SeriesWithTheSameLegendTextShareOneEntry) {
  LinePlot plot{"Objective by epoch", "epoch", "accuracy", {}};
  plot.series = {trial("trial 0", "complete", {{1, 0.5}, {2, 0.6}}),
                 trial("trial 1", "complete", {{1, 0.4}, {2, 0.7}}),
                 trial("trial 2", "pruned", {{1, 0.3}})};
  const std::string svg = svg_line_plot(plot);
  EXPECT_EQ(count_of(svg, "<path class=\"curve\""), 3);
  EXPECT_EQ(count_of(svg, ">complete</text>"), 1);
  EXPECT_EQ(count_of(svg, ">pruned</text>"), 1);
  EXPECT_EQ(count_of(svg, "class=\"legend-swatch\""), 2);
  // A label that is not in the legend is the curve's tooltip.
  EXPECT_THAT(svg, HasSubstr("><title>trial 1</title></path>"));
  EXPECT_THAT(svg, Not(HasSubstr(">trial 1</text>")));
  EXPECT_EQ(count_of(svg, "stroke=\"#8c96a0\""), 3 + 2);  // curves and swatches
}

TEST(SeriesLooks, PrunedCurveIsDashedWithAnXOnItsLastFinitePoint) {
  LinePlot plot{"Objective by epoch", "epoch", "accuracy", {}};
  Series pruned{"trial 2", {{1, 0.3}, {2, 0.35}, {3, std::nan("")}}};
  pruned.dashed = true;
  pruned.marker = MarkerShape::Cross;
  pruned.mark_last = true;
  pruned.line_width = 1.3;
  plot.series = {pruned};
  const std::string svg = svg_line_plot(plot);
  EXPECT_THAT(svg, HasSubstr("stroke-width=\"1.3\""));
  EXPECT_EQ(count_of(svg, "stroke-dasharray=\"5 3\""), 2);  // the curve and its swatch
  EXPECT_EQ(count_of(svg, "<path class=\"marker cross\""), 1);
  EXPECT_EQ(count_of(svg, "<circle"), 0);
  // The X is centred on the point at epoch 2, the same point the line ends at.
  const std::size_t d = svg.find(" d=\"M");
  const std::string line = svg.substr(d + 4, svg.find('"', d + 4) - d - 4);
  const std::string last = line.substr(line.rfind('L') + 1);  // "x y"
  const double x = std::stod(last), y = std::stod(last.substr(last.find(' ')));
  const std::string cross = svg.substr(svg.find("<path class=\"marker cross\""));
  const std::size_t m = cross.find("d=\"M") + 4;
  EXPECT_NEAR(std::stod(cross.substr(m)) + 3.5, x, 0.11) << cross;
  EXPECT_NEAR(std::stod(cross.substr(cross.find(' ', m))) + 3.5, y, 0.11) << cross;
}

TEST(SeriesLooks, MarkLastAddsNoSecondDotWhereOneIsDrawn) {
  LinePlot plot{"Objective by trial", "trial", "accuracy", {}};
  Series points{"complete", {{0, 0.5}, {1, 0.7}}, SeriesStyle::Points};
  points.mark_last = true;
  Series lonely{"running", {{2, 0.6}}};
  lonely.mark_last = true;
  plot.series = {points, lonely};
  // Two points and the lonely one; the legend keeps strokes for dots.
  EXPECT_EQ(count_of(svg_line_plot(plot), "<circle"), 2 + 1);
}

TEST(SeriesLooks, PointsSeriesShowsItsMarkerInTheLegend) {
  LinePlot plot{"Objective by trial", "trial", "accuracy", {}};
  Series pruned{"pruned", {{0, 0.5}, {1, 0.7}}, SeriesStyle::Points};
  pruned.marker = MarkerShape::Cross;
  plot.series = {pruned};
  const std::string svg = svg_line_plot(plot);
  EXPECT_EQ(count_of(svg, "<path class=\"marker cross\""), 2 + 1);  // two points, one swatch
  EXPECT_EQ(count_of(svg, "class=\"legend-swatch\""), 0);
  // The default colors still come from the palette, in series order.
  EXPECT_THAT(svg, HasSubstr("stroke=\"#0072b2\""));
}

}  // namespace
}  // namespace kiln::report
