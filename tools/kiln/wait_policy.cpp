#include "wait_policy.h"

#include <kiln/cpu_threads.h>
#include <kiln/log.h>

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace kiln::cli {
namespace {

char** g_argv = nullptr;

// Carries the measurement across the exec (kiln::wait_policy_reason); empty when
// the cores were quiet. Set either way, so that the processes this kiln starts
// (ranks, sweep workers) keep its choice instead of measuring each other.
constexpr const char* kReason = "KILN_WAIT_POLICY_REASON";
constexpr double kBusyEnough = 0.5;
// The measurement itself, for the default thread count (kiln::set_cpu_threads).
constexpr const char* kBusyCores = "KILN_BUSY_CORES";

}  // namespace

void remember_arguments(char** argv) { g_argv = argv; }

void choose_wait_policy() {
  if (g_argv == nullptr || std::getenv(kReason) != nullptr ||
      std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr)
    return;
  const double busy = measure_busy_cores(std::chrono::milliseconds(100));
  if (busy < kBusyEnough) {
    ::setenv(kReason, "", 1);
    ::unsetenv(kBusyCores);
    return;
  }
  const std::string reason = fmt::format(
      "other processes kept {:.1f} of this process's {} cores busy", busy, affinity_cpus().size());
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::setenv(kReason, reason.c_str(), 1);
  ::setenv(kBusyCores, fmt::format("{:.2f}", busy).c_str(), 1);
  ::execv("/proc/self/exe", g_argv);
  // Still here: the exec failed. Going on spinning is slower, not wrong.
  ::unsetenv("OMP_WAIT_POLICY");
  ::unsetenv(kBusyCores);
  ::setenv(kReason, "", 1);
  log::warn(
      "{}, but kiln could not restart itself to wait passively ({}); set "
      "OMP_WAIT_POLICY=PASSIVE yourself on shared nodes",
      reason, std::strerror(errno));
}

}  // namespace kiln::cli
