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

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
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

// This kiln's executable (/proc/self/exe resolved), for the commands it runs of itself.
std::filesystem::path self_executable();

// This process's environment as a map, to start a child with some variables changed.
std::map<std::string, std::string> current_environment();

// Starts this kiln again (/proc/self/exe) with `argv` and `env`, in its own process
// group (a terminal's Ctrl-C reaches the parent alone, which decides what to pass
// on) with SIGINT/SIGTERM at their defaults; its stdout and stderr go to the given
// descriptors, or stay the parent's for -1.
pid_t spawn_self(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env, int stdout_fd = -1,
                 int stderr_fd = -1);

// While one lives, SIGINT and SIGTERM are caught and passed on, once each time, to
// every child given to add(): children from spawn_self, in process groups of their
// own that a terminal's Ctrl-C does not reach. received() is the last signal
// caught, or 0; it keeps its value until the next ForwardSignals. One at a time.
class ForwardSignals {
 public:
  static constexpr int kMaxChildren = 256;
  ForwardSignals();
  ~ForwardSignals();
  ForwardSignals(const ForwardSignals&) = delete;
  ForwardSignals& operator=(const ForwardSignals&) = delete;
  static void add(pid_t child);  // InternalError past kMaxChildren
  static int received();

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

}  // namespace kiln::cli
