// Debian's headless Chromium for the report tests (tests/report/,
// tests/sweep_report/): a page's DOM after Chromium parsed and laid it out, and
// screenshots.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "support/support.h"

namespace kiln::test {

inline constexpr const char* kChromium = "/usr/bin/chromium";

// Chromium with a private profile, killed after 90 s: a first start can take
// seconds, a hung one must not hang the suite.
inline CommandResult chromium(const std::filesystem::path& profile,
                              std::vector<std::string> arguments) {
  std::vector<std::string> argv = {"/usr/bin/timeout",
                                   "90",
                                   kChromium,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-background-networking",
                                   "--no-first-run",
                                   "--user-data-dir=" + profile.string()};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return run_command(argv);
}

struct Screenshot {
  CommandResult command;
  std::filesystem::path png;
};

// Chromium's screenshot of `page` (1200 x 2400 px) as <build>/test-artifacts/<name>,
// kept for a person to look at.
inline Screenshot screenshot(const std::filesystem::path& profile,
                             const std::filesystem::path& page, const std::string& name) {
  const auto png = std::filesystem::path(KILN_BINARY_DIR) / "test-artifacts" / name;
  std::filesystem::create_directories(png.parent_path());
  std::filesystem::remove(png);
  return {chromium(profile, {"--screenshot=" + png.string(), "--window-size=1200,2400",
                             "--hide-scrollbars", "file://" + page.string()}),
          png};
}

}  // namespace kiln::test
