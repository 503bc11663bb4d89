#include "interrupt.h"

#include <atomic>
#include <csignal>

namespace kiln {
namespace {

std::atomic<int> g_signal{0};
struct sigaction g_previous_int {};
struct sigaction g_previous_term {};
struct sigaction g_previous_usr1 {};
struct sigaction g_previous_usr2 {};

extern "C" void kiln_interrupt_on_signal(int signal) {
  g_signal.store(signal);
  std::signal(signal, SIG_DFL);  // async-signal-safe; a second signal is not caught
}

}  // namespace

InterruptGuard::InterruptGuard() {
  g_signal.store(0);
  struct sigaction action {};
  action.sa_handler = kiln_interrupt_on_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &g_previous_int);
  ::sigaction(SIGTERM, &action, &g_previous_term);
  // Slurm's warning before a time limit or preemption (kiln submit's --signal).
  ::sigaction(SIGUSR1, &action, &g_previous_usr1);
  ::sigaction(SIGUSR2, &action, &g_previous_usr2);
}

InterruptGuard::~InterruptGuard() {
  ::sigaction(SIGINT, &g_previous_int, nullptr);
  ::sigaction(SIGTERM, &g_previous_term, nullptr);
  ::sigaction(SIGUSR1, &g_previous_usr1, nullptr);
  ::sigaction(SIGUSR2, &g_previous_usr2, nullptr);
}

bool interrupt_requested() noexcept { return g_signal.load() != 0; }
int interrupt_signal() noexcept { return g_signal.load(); }

}  // namespace kiln
