// Parallel coordinates on their own: log ticks, where values land on linear, log
// and categorical axes, colors, abbreviations, and degenerate inputs.
#include <kiln/error.h>
#include <kiln/report/plot.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "sweep_report/page_parts.h"

namespace kiln::report {
namespace {

using test::count_of;
using test::no_non_finite_numbers;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Scale = ParallelAxis::Scale;

// Axis `axis`'s ticks: value (its data-value) -> the tick's y.
std::map<std::string, double> ticks_of(const std::string& svg, std::size_t axis) {
  static const std::regex tick(
      R"re(<text class="tick" x="[^"]*" y="([^"]*)" text-anchor="end" data-value="([^"]*)">)re");
  const auto axes = test::parts_from(svg, "<g class=\"parallel-axis\">");
  if (axis >= axes.size()) return {};
  std::map<std::string, double> ticks;
  for (auto it = std::sregex_iterator(axes[axis].begin(), axes[axis].end(), tick);
       it != std::sregex_iterator(); ++it)
    ticks[(*it)[2]] = std::stod((*it)[1]) - 4;  // the text's baseline is 4 px under the tick
  return ticks;
}

// The vertices of each polyline, in drawing order.
std::vector<std::vector<Point>> polylines(const std::string& svg) {
  static const std::regex line(R"re(<polyline class="line[^"]*" points="([^"]*)")re");
  static const std::regex vertex(R"re(([-0-9.]+),([-0-9.]+))re");
  std::vector<std::vector<Point>> lines;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), line); it != std::sregex_iterator();
       ++it) {
    const std::string points = (*it)[1];
    std::vector<Point> vertices;
    for (auto v = std::sregex_iterator(points.begin(), points.end(), vertex);
         v != std::sregex_iterator(); ++v)
      vertices.push_back({std::stod((*v)[1]), std::stod((*v)[2])});
    lines.push_back(vertices);
  }
  return lines;
}

TEST(LogTicks, DecadesWithTwosAndFivesWhenTheSpanIsShort) {
  EXPECT_THAT(log_ticks(1e-4, 1e-1), ElementsAre(DoubleNear(1e-4, 1e-18), DoubleNear(1e-3, 1e-17),
                                                 DoubleNear(1e-2, 1e-16), DoubleNear(1e-1, 1e-15)));
  EXPECT_THAT(log_ticks(0.002, 0.008),
              ElementsAre(DoubleNear(0.001, 1e-15), DoubleNear(0.002, 1e-15),
                          DoubleNear(0.005, 1e-15), DoubleNear(0.01, 1e-15)));
  EXPECT_THAT(log_ticks(16, 256), ElementsAre(10, 20, 50, 100, 200, 500, 1000));
  // One value: a decade around it, not a zero-height axis.
  EXPECT_THAT(log_ticks(1e-3, 1e-3), ElementsAre(DoubleNear(1e-3, 1e-17), DoubleNear(2e-3, 1e-17),
                                                 DoubleNear(5e-3, 1e-17), DoubleNear(1e-2, 1e-16)));
  // Twenty decades: every third power, the last one past the range.
  const auto wide = log_ticks(1e-10, 1e10);
  ASSERT_EQ(wide.size(), 8u);
  EXPECT_DOUBLE_EQ(wide.front(), 1e-10);
  EXPECT_DOUBLE_EQ(wide.back(), 1e11);
  EXPECT_TRUE(log_ticks(0, 1).empty());
  EXPECT_TRUE(log_ticks(-1, 1).empty());
  EXPECT_TRUE(log_ticks(2, 1).empty());
  EXPECT_TRUE(log_ticks(1, INFINITY).empty());
}

ParallelCoordinates three_axes() {
  ParallelCoordinates plot{"Parameters", {}, {}, {}, {}, "accuracy"};
  plot.axes = {{"learning rate", Scale::Log, 1e-4, 1e-1},
               {"hidden", Scale::Linear, 32, 256},
               {"layers", Scale::Categorical, 0, 0, {"small", "a-very-long-choice-text-here"}}};
  plot.lines = {{1e-3, 64, 0}, {1e-2, 256, 1}, {1e-4, 32, 1}};
  plot.line_labels = {"a", "b", "c"};
  plot.color_values = {0.5, 0.9, 0.7};
  return plot;
}

TEST(ParallelCoordinates, LogAxisPutsDecadesEvenlyAndValuesOnTheirTicks) {
  const std::string svg = svg_parallel_coordinates(three_axes());
  const auto ticks = ticks_of(svg, 0);
  for (const char* decade : {"0.0001", "0.001", "0.01", "0.1"})
    ASSERT_TRUE(ticks.contains(decade)) << decade << "\n" << svg;
  // A decade is the same height wherever it is: the axis is logarithmic.
  const double decade = ticks.at("0.0001") - ticks.at("0.001");
  EXPECT_GT(decade, 50);
  EXPECT_NEAR(ticks.at("0.001") - ticks.at("0.01"), decade, 0.11);
  EXPECT_NEAR(ticks.at("0.01") - ticks.at("0.1"), decade, 0.11);
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NEAR(lines[0][0].y, ticks.at("0.001"), 0.11);  // 1e-3 sits on its tick
  EXPECT_NEAR(lines[1][0].y, ticks.at("0.01"), 0.11);
  EXPECT_NEAR(lines[2][0].y, ticks.at("0.0001"), 0.11);
  // The linear axis: 32..256 rounds to 0..300 in steps of 50; 64 lies at 64/300 of it.
  const auto linear = ticks_of(svg, 1);
  ASSERT_TRUE(linear.contains("0") && linear.contains("300")) << svg;
  const double bottom = linear.at("0"), top = linear.at("300");
  EXPECT_NEAR(lines[0][1].y, bottom - (bottom - top) * 64 / 300, 0.11);
  // Categorical: first choice at the bottom, last at the top.
  EXPECT_NEAR(lines[0][2].y, bottom, 0.11);
  EXPECT_NEAR(lines[1][2].y, top, 0.11);
}

TEST(ParallelCoordinates, CategoriesAreAbbreviatedWithTheFullTextAsTooltip) {
  ParallelCoordinates plot = three_axes();
  plot.width = 300;  // about 130 px between axes: too narrow for the long choice
  const std::string svg = svg_parallel_coordinates(plot);
  EXPECT_THAT(svg, HasSubstr(">small<title>small</title>"));
  EXPECT_THAT(svg, HasSubstr("<title>a-very-long-choice-text-here</title>"));
  EXPECT_THAT(svg, Not(HasSubstr(">a-very-long-choice-text-here<title>")));
  EXPECT_THAT(svg, HasSubstr("\u2026<title>a-very-long-choice-text-here</title>"));
}

TEST(ParallelCoordinates, ColorsRunLightToDarkAndTheHighlightedLineComesLast) {
  ParallelCoordinates plot = three_axes();
  plot.highlighted = 1;
  std::string svg = svg_parallel_coordinates(plot);
  EXPECT_EQ(count_of(svg, "<polyline "), 3);
  EXPECT_EQ(count_of(svg, "class=\"line highlighted\""), 1);
  // Drawn last, with the darkest color since 0.9 is the largest value.
  EXPECT_THAT(svg, HasSubstr("stroke=\"#440154\" stroke-width=\"3.5\" stroke-opacity=\"1\" "
                             "stroke-linejoin=\"round\"><title>b</title></polyline><g"));
  EXPECT_THAT(svg, HasSubstr("stroke=\"#bddf26\" stroke-width=\"1.6\" stroke-opacity=\"0.85\" "
                             "stroke-linejoin=\"round\"><title>a</title>"));
  plot.dark_at_low = true;
  svg = svg_parallel_coordinates(plot);
  EXPECT_THAT(svg, HasSubstr("stroke=\"#440154\" stroke-width=\"1.6\" stroke-opacity=\"0.85\" "
                             "stroke-linejoin=\"round\"><title>a</title>"));
  EXPECT_EQ(count_of(svg, "<rect "), 24) << "the color legend";
}

TEST(ParallelCoordinates, AValueAnAxisCannotShowGoesToTheMissingMark) {
  ParallelCoordinates plot = three_axes();
  plot.lines[0][0] = -1;            // not on a log axis
  plot.lines[1][1] = std::nan("");  // not sampled
  plot.lines[2][2] = 7;             // no such category
  const std::string svg = svg_parallel_coordinates(plot);
  EXPECT_EQ(count_of(svg, ">n/a</text>"), 3);
  const auto lines = polylines(svg);
  EXPECT_DOUBLE_EQ(lines[0][0].y, lines[1][1].y);
  EXPECT_DOUBLE_EQ(lines[0][0].y, lines[2][2].y);
  EXPECT_TRUE(no_non_finite_numbers(svg)) << svg;
}

TEST(ParallelCoordinates, DegenerateInputsDrawWithoutNonFiniteNumbers) {
  ParallelCoordinates one_line = three_axes();
  one_line.lines = {{1e-3, 64, 0}};
  one_line.line_labels = {"only"};
  one_line.color_values = {0.5};
  ParallelCoordinates equal = three_axes();
  equal.axes[0] = {"lr", Scale::Log, 1e-3, 1e-3};
  equal.axes[1] = {"same", Scale::Linear, std::nan(""), std::nan("")};
  equal.axes[2].categories = {"one"};
  equal.lines = {{1e-3, 5, 0}, {1e-3, 5, 0}};
  equal.line_labels = {"a", "b"};
  equal.color_values = {0.5, 0.5};
  ParallelCoordinates empty{"Empty", {{"objective", Scale::Linear, std::nan(""), std::nan("")}}};
  ParallelCoordinates no_axes{"No axes", {}};
  for (const auto* plot : {&one_line, &equal, &empty, &no_axes}) {
    const std::string svg = svg_parallel_coordinates(*plot);
    EXPECT_THAT(svg, HasSubstr("<svg class=\"parallel\"")) << plot->title;
    EXPECT_TRUE(no_non_finite_numbers(svg)) << plot->title << "\n" << svg;
    EXPECT_EQ(count_of(svg, "<polyline "), static_cast<int>(plot->lines.size())) << plot->title;
  }
  EXPECT_THAT(svg_parallel_coordinates(empty), HasSubstr(">no lines</text>"));
  EXPECT_THAT(svg_parallel_coordinates(no_axes), HasSubstr(">no axes</text>"));
  // Equal values get a widened, finite axis; the only choice sits mid-axis.
  const auto lines = polylines(svg_parallel_coordinates(equal));
  const auto log_axis = ticks_of(svg_parallel_coordinates(equal), 0);
  const auto linear = ticks_of(svg_parallel_coordinates(equal), 1);
  ASSERT_TRUE(log_axis.contains("0.001") && linear.contains("5"));
  EXPECT_NEAR(lines[0][0].y, log_axis.at("0.001"), 0.11);
  EXPECT_NEAR(lines[0][1].y, linear.at("5"), 0.11);
  double top = INFINITY, bottom = -INFINITY;  // of the axis: its extreme ticks
  for (const auto& [value, y] : linear) top = std::min(top, y), bottom = std::max(bottom, y);
  EXPECT_NEAR(lines[0][2].y, (top + bottom) / 2, 0.11) << "the only choice sits mid-axis";
}

TEST(ParallelCoordinates, ShapesMustAgree) {
  ParallelCoordinates plot = three_axes();
  plot.lines[1].pop_back();
  EXPECT_THROW(svg_parallel_coordinates(plot), InternalError);
  plot = three_axes();
  plot.color_values.pop_back();
  EXPECT_THROW(svg_parallel_coordinates(plot), InternalError);
  plot = three_axes();
  plot.highlighted = 3;
  EXPECT_THROW(svg_parallel_coordinates(plot), InternalError);
}

TEST(ParallelCoordinates, EscapesText) {
  ParallelCoordinates plot = three_axes();
  plot.title = "a<b & \"c\"";
  plot.axes[2].categories[0] = "{\"x\":\"<script>\"}";
  plot.line_labels[0] = "<b>";
  const std::string svg = svg_parallel_coordinates(plot);
  EXPECT_THAT(svg, HasSubstr("a&lt;b &amp; &quot;c&quot;"));
  EXPECT_THAT(svg, HasSubstr("{&quot;x&quot;:&quot;&lt;script&gt;&quot;}"));
  EXPECT_THAT(svg, Not(HasSubstr("<script>")));
  EXPECT_THAT(svg, Not(HasSubstr("<b>")));
}

}  // namespace
}  // namespace kiln::report
