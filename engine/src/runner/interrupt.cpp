#include "interrupt.h"

#include <atomic>
#include <csignal>

namespace kiln {
namespace {

std::atomic<int> g_signal{0};
struct sigaction g_previous_int {};
struct sigaction g_previous_term {};

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
}

InterruptGuard::~InterruptGuard() {
  ::sigaction(SIGINT, &g_previous_int, nullptr);
  ::sigaction(SIGTERM, &g_previous_term, nullptr);
}

bool interrupt_requested() noexcept { return g_signal.load() != 0; }
int interrupt_signal() noexcept { return g_signal.load(); }

}  // namespace kiln
