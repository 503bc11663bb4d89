// `kiln report` on the command line: what it writes, and acceptance 4 of issue 6
// (bad input): an unknown run or a run without metrics is one line and exit 2; NaN
// metric values still make a report.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "report/report_cli_fixture.h"
#include "report/report_test_support.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

void expect_one_line(const CommandResult& result, const std::string& says) {
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_EQ(lines_of(result.err).size(), 1u) << result.err;
  EXPECT_THAT(result.err, StartsWith("kiln: config error: report: "));
  EXPECT_THAT(result.err, HasSubstr(says));
  EXPECT_EQ(result.out, "");
}

TEST_F(ReportCliTest, WritesRunAndModelReports) {
  const std::string run_id = run_pipeline();
  ASSERT_FALSE(run_id.empty());
  const CommandResult by_default = kiln({"report", run_id});
  ASSERT_EQ(by_default.exit_code, 0) << by_default.err;
  const fs::path default_file = dir_ / ("report-" + run_id + ".html");
  EXPECT_EQ(by_default.out, "report written to report-" + run_id + ".html\n");
  EXPECT_THAT(read_text(default_file), HasSubstr("<svg class=\"plot\""));

  const CommandResult model = kiln({"report", kModel, "-o", "m.html"});
  ASSERT_EQ(model.exit_code, 0) << model.err;
  EXPECT_THAT(read_text(dir_ / "m.html"), HasSubstr("Model synthetic-mlp"));

  // MODEL@ALIAS is that version's run.
  const CommandResult champion = kiln({"report", "synthetic-mlp@champion", "-o", "c.html"});
  ASSERT_EQ(champion.exit_code, 0) << champion.err;
  EXPECT_THAT(read_text(dir_ / "c.html"), HasSubstr(run_id));
  EXPECT_FALSE(fs::exists(registry() / "report.html")) << "reading writes nothing in the registry";
}

TEST_F(ReportCliTest, UnknownRunOrModelIsOneLine) {
  ASSERT_FALSE(run_pipeline().empty());
  expect_one_line(kiln({"report", "0123456789abcdef0123456789abcdef"}),
                  "'0123456789abcdef0123456789abcdef' is neither a run id nor a model");
  expect_one_line(kiln({"report", "no-such-model"}), "neither a run id nor a model");
  EXPECT_FALSE(fs::exists(dir_ / "report-no-such-model.html"));
  const CommandResult no_version = kiln({"report", "synthetic-mlp@7"});
  EXPECT_EQ(no_version.exit_code, 2);
  EXPECT_EQ(lines_of(no_version.err).size(), 1u) << no_version.err;
}

TEST_F(ReportCliTest, MissingRegistryIsOneLine) {
  const CommandResult result = kiln({"report", "anything"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(lines_of(result.err).size(), 1u) << result.err;
}

TEST_F(ReportCliTest, RunWithoutMetricsIsOneLine) {
  registry::MlflowStore writer(registry());
  const auto run = writer.start_run(writer.ensure_experiment("empty"), "no-metrics");
  run->log_param("p", "1");
  run->end(registry::RunStatus::Failed);
  expect_one_line(kiln({"report", run->run_id()}), "has no metrics to plot");
  EXPECT_FALSE(fs::exists(dir_ / ("report-" + run->run_id() + ".html")));
}

TEST_F(ReportCliTest, NanMetricValuesStillRender) {
  registry::MlflowStore writer(registry());
  const auto run = writer.start_run(writer.ensure_experiment("diverged"), "nan-loss");
  const double nan = std::nan("");
  for (const double loss : {2.0, 1.0, nan, nan, 0.5}) run->log_metric("train/loss", loss, 10);
  for (const double inf : {INFINITY, -INFINITY}) run->log_metric("train/lr", inf, 10);
  run->log_metric("eval/accuracy", nan, 0);
  run->end(registry::RunStatus::Failed);
  const CommandResult result = kiln({"report", run->run_id(), "-o", "nan.html"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string html = read_text(dir_ / "nan.html");
  const auto plots = plots_in(html);
  ASSERT_TRUE(plots.contains("Loss"));
  EXPECT_EQ(plots.at("Loss").paths, 1);
  EXPECT_THAT(html, HasSubstr("train/lr (no finite values)"));
  EXPECT_THAT(html, HasSubstr("eval/accuracy (no finite values)"));
}

}  // namespace
}  // namespace kiln::test
