// `kiln run --nproc N`: kiln's local launcher (like torchrun). It starts N copies
// of this kiln as ranks 0..N-1, each with KILN_RANK, KILN_WORLD_SIZE,
// KILN_LOCAL_RANK and KILN_RDZV in its environment, in their own process group
// (so a terminal's Ctrl-C reaches the launcher only), and then:
//   - prefixes every line a rank prints with "[rank K] " (stdout and stderr apart);
//   - forwards SIGINT/SIGTERM to every rank;
//   - when a rank fails, gives the others `grace` to fail on their own (their
//     watchdog names the culprit), then SIGTERM, then SIGKILL 5 s later;
//   - returns 0 when every rank succeeded, else the exit code of the first rank
//     that failed (128 + signal for a killed one).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace kiln::cli {

struct LaunchPlan {
  int nproc = 1;
  std::vector<std::string> argv;           // argv of each rank (argv[0]: the executable)
  std::map<std::string, std::string> env;  // added to each rank's environment
  std::string rendezvous;                  // KILN_RDZV of every rank
  std::chrono::milliseconds grace{std::chrono::seconds(330)};
};

int launch_local(const LaunchPlan& plan);

}  // namespace kiln::cli
