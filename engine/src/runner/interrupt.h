// Private to the runner: SIGINT/SIGTERM (and SIGUSR1/SIGUSR2, Slurm's warning
// signals) turn into a flag that stages poll at step boundaries. The first signal
// asks for a clean stop (checkpoint, mark the run KILLED); the handler then
// restores the default action, so a second signal ends the process at once.
#pragma once

namespace kiln {

class InterruptGuard {
 public:
  InterruptGuard();   // installs the handlers and clears the flag
  ~InterruptGuard();  // restores the previous handlers
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

bool interrupt_requested() noexcept;
// The signal that set the flag (0 if none).
int interrupt_signal() noexcept;

}  // namespace kiln
