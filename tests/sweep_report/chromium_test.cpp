// The sweep report in headless Chromium (Debian's `chromium`): its three figures are
// in the DOM with their curves and lines, nothing points off the page, and a
// screenshot is kept under <build>/test-artifacts/ for a person to look at.
#include <kiln/report/sweep_report.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>

#include "report/headless_chromium.h"
#include "sweep_report/eight_trials.h"
#include "sweep_report/page_parts.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(SweepReportChromium, RendersItsThreeFigures) {
  if (!fs::exists(kChromium))
    GTEST_SKIP() << "Debian's chromium is not installed (tools/install-deps.sh installs it)";
  TempDir dir;
  const fs::path page = dir / "sweep.html";
  write_text(page, report::render_sweep_report(eight_trials()));

  const CommandResult dump = chromium(dir / "profile", {"--dump-dom", "file://" + page.string()});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  const std::string& dom = dump.out;
  EXPECT_EQ(count_of(dom, "<svg "), 3) << dom.substr(0, 2000);
  EXPECT_THAT(external_references(dom), IsEmpty());
  const auto plots = plots_in(dom);
  ASSERT_TRUE(plots.contains("Objective by trial"));
  ASSERT_TRUE(plots.contains("Objective by epoch"));
  EXPECT_EQ(plots.at("Objective by trial").paths, 3);
  EXPECT_EQ(plots.at("Objective by epoch").paths, 7);
  const std::string parallel = svg_labelled(dom, "Parameters of the complete trials");
  EXPECT_EQ(count_of(parallel, "<polyline "), 4);
  // The JSON choice arrives as text, not as markup.
  EXPECT_THAT(dom, HasSubstr("{\"note\":\"a&lt;b &amp; 'c'\"}"));

  const auto [shot, png] = screenshot(dir / "profile", page, "sweep_report.png");
  ASSERT_EQ(shot.exit_code, 0) << shot.err;
  ASSERT_TRUE(fs::exists(png)) << shot.err;
  EXPECT_GT(fs::file_size(png), 20000u) << "a page of plots, not a blank one";
  std::cout << "sweep report screenshot: " << png.string() << "\n";
}

}  // namespace
}  // namespace kiln::test
