// Acceptance 2 of issue 6: the report of a run made by the kiln CLI, rendered in
// headless Chromium (Debian's `chromium`): the SVG plots are in the DOM with one
// path per curve, the confusion matrix has its class names, nothing points off the
// page, and a screenshot is kept under <build>/test-artifacts/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>

#include "report/headless_chromium.h"
#include "report/report_cli_fixture.h"
#include "report/report_test_support.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class ChromiumTest : public ReportCliTest {
 protected:
  void SetUp() override {
    if (!fs::exists(kChromium))
      GTEST_FAIL() << "Debian's chromium is not installed (tools/install-deps.sh installs it)";
    ReportCliTest::SetUp();
  }

  // The page's DOM after Chromium parsed and laid it out.
  std::string dom_of(const fs::path& page) {
    const CommandResult dump =
        chromium(dir_ / "profile", {"--dump-dom", "file://" + page.string()});
    EXPECT_EQ(dump.exit_code, 0) << dump.err;
    return dump.out;
  }
};

TEST_F(ChromiumTest, RendersTheRunReportWithOnePathPerCurve) {
  const std::string run_id = run_pipeline();
  ASSERT_FALSE(run_id.empty());
  const fs::path page = dir_ / "report.html";
  const CommandResult report = kiln({"report", run_id, "-o", page.string()});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  const std::string html = read_text(page);
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
  EXPECT_THAT(external_references(html), IsEmpty());

  const std::string dom = dom_of(page);
  ASSERT_THAT(dom, HasSubstr("<svg class=\"plot\"")) << dom.substr(0, 2000);
  EXPECT_THAT(external_references(dom), IsEmpty());
  const auto plots = plots_in(dom);
  for (const auto& [title, plot] : plots) {
    EXPECT_EQ(plot.paths, plot.declared_curves) << title;
    for (const std::string& d : plot.path_data) EXPECT_EQ(d.find("nan"), std::string::npos) << d;
  }
  const std::map<std::string, int> expected = {{"Loss", 2},
                                               {"Accuracy", 2},
                                               {"Learning rate", 1},
                                               {"Throughput", 1},
                                               {"Step time and data wait", 2}};
  for (const auto& [title, curves] : expected) {
    ASSERT_TRUE(plots.contains(title)) << title;
    EXPECT_EQ(plots.at(title).paths, curves) << title;
  }
  // The training curve is a line through every logged step; eval is a dot.
  EXPECT_GE(count_of(plots.at("Loss").path_data[0], "L"), 5);
  EXPECT_EQ(plots.at("Loss").markers, 1);
  EXPECT_EQ(count_of(dom, "<rect class=\"cell\""), 100);
  for (const char* name : {"t-shirt", "sneaker", "boot"})
    EXPECT_THAT(dom, HasSubstr(std::string(">") + name + "</text>"));

  const auto [shot, png] = screenshot(dir_ / "profile", page, "report.png");
  ASSERT_EQ(shot.exit_code, 0) << shot.err;
  ASSERT_TRUE(fs::exists(png)) << shot.err;
  EXPECT_EQ(read_text(png).substr(1, 3), "PNG");
  EXPECT_GT(fs::file_size(png), 20000u) << "a page of plots, not a blank one";
  std::cout << "report screenshot: " << png.string() << "\n";
}

TEST_F(ChromiumTest, RendersTheModelReport) {
  ASSERT_FALSE(run_pipeline().empty());
  const fs::path page = dir_ / "model.html";
  const CommandResult report = kiln({"report", kModel, "-o", page.string()});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  const auto plots = plots_in(dom_of(page));
  ASSERT_TRUE(plots.contains("Scores by version"));
  EXPECT_EQ(plots.at("Scores by version").paths, 2);  // accuracy, macro_f1
  EXPECT_EQ(plots.at("Scores by version").markers, 2);
}

}  // namespace
}  // namespace kiln::test
