// Spawned processes die with their test: a ChildGuard owns a child started in its
// own process group (call ::setpgid(0, 0) in the child) and, when the test leaves
// its scope, by an ASSERT that fails before the kill included, kills the whole
// group with SIGKILL and reaps the child. A child the test has already reaped is
// left alone, so a recycled pid is never signalled.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kiln::test {

class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {
    // Also here, not only in the child: the group exists before the parent
    // could kill it, whichever of the two runs first.
    if (pid_ > 0) ::setpgid(pid_, pid_);
  }
  ~ChildGuard() {
    if (pid_ <= 0) return;
    int status = 0;
    const pid_t waited = ::waitpid(pid_, &status, WNOHANG);
    if (waited < 0) return;  // reaped by the test already
    ::kill(-pid_, SIGKILL);  // the child's own children (ranks) too
    if (waited == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  ChildGuard(ChildGuard&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }
  ChildGuard& operator=(ChildGuard&&) = delete;
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;

 private:
  pid_t pid_;
};

}  // namespace kiln::test
