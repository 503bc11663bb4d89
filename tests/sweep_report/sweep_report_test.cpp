// The sweep report of a hand-made study (eight_trials.h), and of degenerate ones.
#include <kiln/report/sweep_report.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "sweep_report/eight_trials.h"
#include "sweep_report/page_parts.h"

namespace kiln::report {
namespace {

using sweep::Trial;
using sweep::TrialState;
using test::count_of;
using test::eight_trials;
using test::make_trial;
using test::no_non_finite_numbers;
using test::svg_labelled;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// The text of the table cell after the cell whose text is `key` (a summary row).
std::string cell_after(const std::string& page, const std::string& key) {
  const std::regex row("<td>" + key + "</td><td>([^<]*)</td>");
  std::smatch match;
  return std::regex_search(page, match, row) ? match[1].str() : "(no row " + key + ")";
}

TEST(SweepReport, SummaryCountsTrialsByStateAndNamesTheBest) {
  const std::string page = render_sweep_report(eight_trials());
  EXPECT_THAT(page, HasSubstr("<title>Sweep fashion-lr</title>"));
  EXPECT_EQ(cell_after(page, "trials"), "8");
  EXPECT_EQ(cell_after(page, "complete"), "4");
  EXPECT_EQ(cell_after(page, "pruned"), "2");
  EXPECT_EQ(cell_after(page, "failed"), "1");
  EXPECT_EQ(cell_after(page, "running"), "1");
  EXPECT_EQ(cell_after(page, "waiting"), "0");
  EXPECT_EQ(cell_after(page, "best trial"), "3");
  EXPECT_EQ(cell_after(page, "best eval/accuracy"), "0.91");
  // Trial 3 says 3 epochs, trial 4 none; the others count their intermediate
  // values: 3 + 3 + 2 + 1 + 3 + 1.
  EXPECT_EQ(cell_after(page, "epochs trained"), "16");
  // The best trial's parameters, under their display names, external values.
  EXPECT_EQ(cell_after(page, "learning rate"), "0.01");
  EXPECT_EQ(cell_after(page, "hidden units"), "256");
  EXPECT_EQ(cell_after(page, "train.with.layers"),
            "{&quot;note&quot;:&quot;a&lt;b &amp; &#39;c&#39;&quot;}");
}

TEST(SweepReport, ParallelCoordinatesHaveOneLinePerCompleteTrial) {
  const std::string page = render_sweep_report(eight_trials());
  const std::string svg = svg_labelled(page, "Parameters of the complete trials");
  ASSERT_FALSE(svg.empty()) << page;
  EXPECT_EQ(count_of(svg, "<polyline "), 4);
  EXPECT_THAT(svg, HasSubstr("data-lines=\"4\""));
  // Three parameters and the objective.
  EXPECT_EQ(count_of(svg, "<g class=\"parallel-axis\">"), 4);
  // The best is drawn last and thick; the worst (0.81) first.
  EXPECT_EQ(count_of(svg, "class=\"line highlighted\""), 1);
  EXPECT_LT(svg.find("<title>trial 0: eval/accuracy 0.81</title>"),
            svg.find("<title>trial 6: eval/accuracy 0.88</title>"));
  EXPECT_THAT(svg, HasSubstr("<title>trial 3: eval/accuracy 0.91</title></polyline><g"));
  // The log axis has its decades; the categorical axis one tick per choice, the long
  // JSON abbreviated with the whole of it as the tooltip.
  for (const char* decade : {"0.0001", "0.001", "0.01", "0.1"})
    EXPECT_THAT(svg, HasSubstr(std::string("data-value=\"") + decade + "\">" + decade + "<"));
  const auto axes = test::parts_from(svg, "<g class=\"parallel-axis\">");
  ASSERT_EQ(axes.size(), 4u);
  // By name: hidden, layers, lr, then the objective.
  EXPECT_THAT(axes[1], HasSubstr(">train.with.layers<title>"));
  EXPECT_EQ(count_of(axes[1], "<text class=\"tick\""), 3);
  // Structured choices share long prefixes: each tick starts with the choice's index,
  // and its tooltip holds the whole text.
  EXPECT_THAT(axes[1], HasSubstr(">#0 [{&quot;type"));
  EXPECT_THAT(axes[1], HasSubstr(">#1 [{&quot;type"));
  EXPECT_THAT(axes[1], HasSubstr("\u2026<title>#1 [{&quot;type&quot;:&quot;dense&quot;,"
                                 "&quot;units&quot;:128},{&quot;type&quot;:&quot;dropout&quot;"));
}

TEST(SweepReport, ObjectivePlotMarksPrunedTrialsAndTheRunningBest) {
  const std::string page = render_sweep_report(eight_trials());
  const auto plots = test::plots_in(page);
  ASSERT_TRUE(plots.contains("Objective by trial"));
  const auto& objective = plots.at("Objective by trial");
  EXPECT_EQ(objective.paths, 3);    // complete, pruned, best so far
  EXPECT_EQ(objective.markers, 4);  // a dot per complete trial
  const std::string svg = svg_labelled(page, "Objective by trial");
  EXPECT_EQ(count_of(svg, "<path class=\"marker cross\""), 2 + 1);  // trials 2, 5 and legend
  // Best so far: 0.81 at 0, 0.86 from 1, 0.91 from 3, held to trial 6.
  const std::string& best = objective.path_data[2];
  EXPECT_EQ(count_of(best, "M"), 1) << best;
  EXPECT_EQ(count_of(best, "L"), 5) << best;
}

TEST(SweepReport, LearningCurvesDashPrunedTrialsAndHighlightTheBest) {
  const std::string page = render_sweep_report(eight_trials());
  const std::string svg = svg_labelled(page, "Objective by epoch");
  ASSERT_FALSE(svg.empty());
  EXPECT_EQ(count_of(svg, "<path class=\"curve\""), 7);         // every trial but the failed one
  EXPECT_EQ(count_of(svg, "<path class=\"marker cross\""), 2);  // where 2 and 5 stopped
  // Dashed: the two pruned curves and their one legend swatch.
  EXPECT_EQ(count_of(svg, "stroke-dasharray"), 3);
  EXPECT_THAT(svg, HasSubstr(">best: trial 3</text>"));
  EXPECT_THAT(svg, HasSubstr("stroke-width=\"3.0\""));
  // The best curve comes last, so it is drawn over the others.
  EXPECT_GT(svg.find("<title>trial 3 (COMPLETE)</title>"), svg.find("<title>trial 7 (RUNNING)"));
}

TEST(SweepReport, TableListsEveryTrialWithFullValuesAndFacts) {
  const std::string page = render_sweep_report(eight_trials());
  const std::string table = page.substr(page.find("<section id=\"trials\">"));
  EXPECT_EQ(count_of(table, "<tr>"), 1 + 8);
  EXPECT_THAT(table, HasSubstr("<th>trial</th><th>state</th><th>eval/accuracy</th>"
                               "<th>hidden units</th><th>train.with.layers</th>"
                               "<th>learning rate</th><th>epochs</th><th>wall time</th>"
                               "<th>MLflow run</th>"));
  EXPECT_THAT(table, HasSubstr("<tr><td>3</td><td>complete (best)</td><td>0.91</td><td>256</td>"
                               "<td>{&quot;note&quot;:&quot;a&lt;b &amp; &#39;c&#39;&quot;}</td>"
                               "<td>0.01</td><td>3</td><td>1 min 5 s</td>"
                               "<td>5f2b0c9e8d7a4b3c2d1e0f9a8b7c6d5e</td></tr>"));
  EXPECT_THAT(table, HasSubstr("<tr><td>2</td><td>pruned</td><td>0.55 (last reported, epoch 2)"
                               "</td><td>32</td>"));
  // The long choice is whole in the table.
  EXPECT_THAT(table, HasSubstr("<td>[{&quot;type&quot;:&quot;dense&quot;,&quot;units&quot;:128},"
                               "{&quot;type&quot;:&quot;dropout&quot;,&quot;p&quot;:0.5}]</td>"));
  EXPECT_THAT(table, HasSubstr("<tr><td>4</td><td>failed</td><td></td><td>64</td>"));
  EXPECT_THAT(table, HasSubstr("<td>2.5 s</td>"));
}

TEST(SweepReport, EscapesEveryText) {
  SweepReportInput input = eight_trials();
  input.sweep_name = "<script>alert(1)</script>";
  input.objective = "a<b>";
  input.display_names["train.with.lr"] = "lr \"&\" <i>";
  const std::string page = render_sweep_report(input);
  EXPECT_THAT(page, Not(HasSubstr("<script")));
  EXPECT_THAT(page, Not(HasSubstr("<b>")));
  EXPECT_THAT(page, Not(HasSubstr("<i>")));
  EXPECT_THAT(page, Not(HasSubstr("a<b & 'c'")));
  EXPECT_THAT(page, HasSubstr("lr &quot;&amp;&quot; &lt;i&gt;"));
  EXPECT_THAT(test::external_references(page), IsEmpty());
}

SweepReportInput with_trials(std::vector<Trial> trials) {
  SweepReportInput input;
  input.objective = "eval/loss";
  input.study.name = "degenerate";
  input.study.direction = sweep::Direction::Minimize;
  input.study.trials = std::move(trials);
  return input;
}

TEST(SweepReport, DegenerateStudiesRenderWithoutNonFiniteNumbers) {
  const auto C = TrialState::Complete;
  const std::map<std::int64_t, double> none;
  const std::vector<std::pair<std::string, SweepReportInput>> studies = {
      {"no trials", with_trials({})},
      {"nothing complete",
       with_trials({make_trial(0, TrialState::Running, 1e-3, 64, 0, std::nullopt, none),
                    make_trial(1, TrialState::Pruned, 1e-3, 64, 0, std::nullopt, {{1, NAN}}),
                    make_trial(2, TrialState::Fail, 1e-3, 64, 0, std::nullopt, none)})},
      {"one trial", with_trials({make_trial(0, C, 1e-3, 64, 0, 0.5, {{1, 0.5}})})},
      {"all equal", with_trials({make_trial(0, C, 1e-3, 64, 1, 0.5, none),
                                 make_trial(1, C, 1e-3, 64, 1, 0.5, none)})},
      {"non-finite", with_trials({make_trial(0, C, 1e-3, 64, 0, INFINITY, {{1, NAN}}),
                                  make_trial(1, C, 1e-3, 64, 0, NAN, {{1, -INFINITY}})})},
  };
  for (const auto& [name, input] : studies) {
    const std::string page = render_sweep_report(input);
    EXPECT_TRUE(no_non_finite_numbers(page)) << name << "\n" << page;
    EXPECT_THAT(page, HasSubstr("</html>")) << name;
  }
  const std::string empty = render_sweep_report(studies[0].second);
  EXPECT_THAT(empty, HasSubstr("none has completed"));
  EXPECT_THAT(empty, HasSubstr("The study has no trials yet."));
  EXPECT_THAT(empty, HasSubstr("No trial has completed with a finite objective yet."));
  EXPECT_THAT(empty, HasSubstr("No trial has reported an intermediate value yet."));
  EXPECT_THAT(render_sweep_report(studies[4].second), HasSubstr("<td>not finite</td>"));
  const std::string equal = render_sweep_report(studies[3].second);
  EXPECT_EQ(count_of(svg_labelled(equal, "Parameters of the complete trials"), "<polyline "), 2);
}

}  // namespace
}  // namespace kiln::report
