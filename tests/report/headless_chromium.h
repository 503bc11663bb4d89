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

}  // namespace kiln::test
