// The plotting module on its own: ticks, one path per curve, gaps for NaN, heat
// map cells, escaping.
#include <kiln/error.h>
#include <kiln/report/plot.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

namespace kiln::report {
namespace {

using ::testing::DoubleNear;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pointwise;

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t found = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++found;
  return found;
}

// The d attributes of the curves, in order.
std::vector<std::string> curve_paths(const std::string& svg) {
  static const std::regex path(R"re(<path class="curve" data-label="[^"]*" d="([^"]*)")re");
  std::vector<std::string> paths;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), path); it != std::sregex_iterator();
       ++it)
    paths.push_back((*it)[1]);
  return paths;
}

MATCHER_P(Ticks, expected, "") {
  return ::testing::ExplainMatchResult(Pointwise(DoubleNear(1e-12), expected), arg,
                                       result_listener);
}

TEST(NiceTicks, CoverTheRangeInRoundSteps) {
  using V = std::vector<double>;
  EXPECT_THAT(nice_ticks(0, 1, 5), Ticks(V{0, 0.2, 0.4, 0.6, 0.8, 1}));
  EXPECT_THAT(nice_ticks(5, 60, 6), Ticks(V{0, 10, 20, 30, 40, 50, 60}));
  EXPECT_THAT(nice_ticks(-0.3, 0.3, 3), Ticks(V{-0.4, -0.2, 0, 0.2, 0.4}));
  EXPECT_EQ(nice_ticks(-0.3, 0.3, 3)[2], 0.0) << "no -0 or 1e-17 at zero";
}

TEST(NiceTicks, WidenAConstantAndKeepWholeSteps) {
  using V = std::vector<double>;
  EXPECT_THAT(nice_ticks(0, 0, 4), Ticks(V{-1, -0.5, 0, 0.5, 1}));
  EXPECT_THAT(nice_ticks(1, 1, 6, 1), Ticks(V{0, 1, 2}));
  EXPECT_THAT(nice_ticks(0, 3, 10, 1), Ticks(V{0, 1, 2, 3}));
  EXPECT_THAT(nice_ticks(-1e308, 1e308, 5), Ticks(V{-1e308, 1e308}));
  EXPECT_TRUE(nice_ticks(std::nan(""), 1, 5).empty());
  EXPECT_TRUE(nice_ticks(2, 1, 5).empty());
}

TEST(TickText, ShowsAsManyDigitsAsTheStepNeeds) {
  EXPECT_EQ(tick_text(0, 0.2), "0");
  EXPECT_EQ(tick_text(0.4, 0.2), "0.4");
  EXPECT_EQ(tick_text(0.15, 0.05), "0.15");
  EXPECT_EQ(tick_text(30, 10), "30");
  EXPECT_EQ(tick_text(50000, 10000), "50k");
  EXPECT_EQ(tick_text(2.5e6, 5e5), "2.5M");
  EXPECT_EQ(tick_text(0.0003, 1e-4), "0.0003");
  EXPECT_EQ(tick_text(1e-5, 5e-7), "1.00e-05");
  EXPECT_EQ(tick_text(9.5e-6, 5e-7), "9.5e-06");
}

TEST(LinePlot, DrawsOnePathPerSeriesWithAxesAndLegend) {
  LinePlot plot{"Loss", "step", "loss", {}};
  plot.series.push_back({"train/loss", {{1, 2.0}, {2, 1.0}, {3, 0.5}}});
  plot.series.push_back({"eval/loss", {{3, 0.7}}, SeriesStyle::Points});
  const std::string svg = svg_line_plot(plot);
  EXPECT_THAT(svg, HasSubstr("<svg class=\"plot\""));
  EXPECT_THAT(svg, HasSubstr("data-curves=\"2\""));
  EXPECT_EQ(count(svg, "<path "), 2u);
  EXPECT_EQ(count(svg, "<circle "), 1u);  // the eval point
  EXPECT_THAT(svg, HasSubstr(">train/loss</text>"));
  EXPECT_THAT(svg, HasSubstr(">eval/loss</text>"));
  EXPECT_THAT(svg, HasSubstr(">step</text>"));
  EXPECT_THAT(svg, Not(HasSubstr("http")));
  const auto paths = curve_paths(svg);
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(count(paths[0], "M"), 1u);
  EXPECT_EQ(count(paths[0], "L"), 2u);
}

TEST(LinePlot, NanAndInfinityAreGapsNotCrashes) {
  const double nan = std::nan(""), inf = INFINITY;
  LinePlot plot{"Loss", "step", "loss", {}};
  plot.series.push_back({"a", {{1, 1}, {2, 2}, {3, nan}, {4, 3}, {5, 4}, {6, inf}, {7, 5}}});
  plot.series.push_back({"all nan", {{1, nan}, {2, nan}}});
  const std::string svg = svg_line_plot(plot);
  const auto paths = curve_paths(svg);
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(count(paths[0], "M"), 3u) << paths[0];  // three runs of finite points
  EXPECT_EQ(count(paths[0], "L"), 2u) << paths[0];
  EXPECT_EQ(count(svg, "<circle "), 1u) << "the point alone after the infinity is a dot";
  EXPECT_EQ(paths[1], "");
  EXPECT_THAT(svg, HasSubstr("all nan (no finite values)"));
  for (const auto& d : paths) {
    EXPECT_EQ(d.find("nan"), std::string::npos) << d;
    EXPECT_EQ(d.find("inf"), std::string::npos) << d;
  }
}

TEST(LinePlot, WithoutAnyFiniteValueSaysSo) {
  LinePlot plot{"Empty", "step", "value", {{"x", {{0, std::nan("")}}}}};
  EXPECT_THAT(svg_line_plot(plot), HasSubstr("no finite values</text>"));
  EXPECT_THAT(svg_line_plot(LinePlot{"None", "x", "y", {}}), HasSubstr("data-curves=\"0\""));
}

TEST(LinePlot, EscapesText) {
  LinePlot plot{"a<b & \"c\"", "x", "y", {{"<script>", {{0, 1}, {1, 2}}}}};
  const std::string svg = svg_line_plot(plot);
  EXPECT_THAT(svg, HasSubstr("a&lt;b &amp; &quot;c&quot;"));
  EXPECT_THAT(svg, HasSubstr("&lt;script&gt;"));
  EXPECT_THAT(svg, Not(HasSubstr("<script>")));
}

TEST(HeatMap, OneCellPerValueWithLabelsAndText) {
  HeatMap map{"Confusion",
              "true class",
              "predicted class",
              {"cat", "dog"},
              {"cat", "dog"},
              {{0.9, 0.1}, {std::nan(""), 0}},
              {{"9", "1"}, {"0", "0"}}};
  const std::string svg = svg_heat_map(map);
  EXPECT_THAT(svg, HasSubstr("<svg class=\"heatmap\""));
  EXPECT_EQ(count(svg, "<rect class=\"cell\""), 4u);
  EXPECT_EQ(count(svg, ">cat</text>"), 2u);
  EXPECT_EQ(count(svg, ">dog</text>"), 2u);
  EXPECT_THAT(svg, HasSubstr("fill=\"#dddddd\""));  // the NaN cell
  EXPECT_THAT(svg, HasSubstr("fill=\"#08306b\""));  // the largest value
  EXPECT_THAT(svg, HasSubstr(">9</text>"));
}

TEST(HeatMap, ShapesMustAgree) {
  HeatMap map{"m", "r", "c", {"a", "b"}, {"x"}, {{1}}, {}};
  EXPECT_THROW(svg_heat_map(map), InternalError);
  map.values = {{1}, {2}};
  map.cell_text = {{"1", "2"}, {"3", "4"}};
  EXPECT_THROW(svg_heat_map(map), InternalError);
  map.cell_text.clear();
  EXPECT_NO_THROW(svg_heat_map(map));
}

TEST(EscapeXml, EscapesMarkupAndQuotes) {
  EXPECT_EQ(escape_xml("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
}

}  // namespace
}  // namespace kiln::report
