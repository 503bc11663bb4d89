#include <kiln/child_program.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;

// Closes the pipe ends and reaps the child, killing it first when the parent
// leaves early (a timeout, or an exception from on_output).
struct Running {
  pid_t pid = -1;
  std::array<int, 2> fds{-1, -1};
  bool finished = false;
  int status = 0;

  ~Running() {
    for (const int fd : fds)
      if (fd >= 0) ::close(fd);
    if (pid > 0 && !finished) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
};

// Waits for the child to end; false when it did not within `deadline`.
bool reap(Running& child, std::optional<Clock::time_point> deadline) {
  for (;;) {
    const pid_t done = ::waitpid(child.pid, &child.status, deadline ? WNOHANG : 0);
    if (done == child.pid) return child.finished = true;
    if (done < 0 && errno != EINTR) return child.finished = true;  // not ours any more
    if (deadline && Clock::now() >= *deadline) return false;
    if (deadline) ::usleep(2000);
  }
}

}  // namespace

std::string signal_name(int signal) {
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation != nullptr ? std::string("SIG") + abbreviation
                                 : "signal " + std::to_string(signal);
}

ChildResult run_child(const std::vector<std::string>& argv, const ChildOptions& options) {
  if (argv.empty()) throw std::invalid_argument("run_child: no program");
  ChildResult result;
  std::array<int, 2> out_pipe{-1, -1}, err_pipe{-1, -1};
  Running child;
  const std::string cannot_run = "cannot run " + argv[0] + ": ";
  const auto not_started = [&](std::string_view what) {
    result.exit_code = 127;
    result.err = cannot_run + std::string(what) + std::strerror(errno);
    return result;
  };
  if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0) return not_started("pipe: ");
  child.fds[0] = out_pipe[0];
  if (::pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
    ::close(out_pipe[1]);
    return not_started("pipe: ");
  }
  child.fds[1] = err_pipe[0];
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  // posix_spawn, not fork: no copy of this process's page tables (a training run
  // may hold gigabytes), and no failure for want of memory to copy them.
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  pid_t pid = -1;
  const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (spawned != 0) {
    errno = spawned;
    return not_started("");
  }
  child.pid = pid;

  std::array<pollfd, 2> fds{{{child.fds[0], POLLIN, 0}, {child.fds[1], POLLIN, 0}}};
  int open = 2;
  std::array<char, 1 << 16> buffer{};
  const int timeout_ms =
      options.idle_timeout ? static_cast<int>(options.idle_timeout->count()) : -1;
  while (open > 0) {
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      result.timed_out = true;
      break;
    }
    if (ready < 0) break;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open;
        continue;
      }
      const std::string_view piece(buffer.data(), static_cast<std::size_t>(n));
      if (i == 1) {
        if (result.err.size() < options.max_error_bytes)
          result.err.append(piece.substr(0, options.max_error_bytes - result.err.size()));
      } else if (options.on_output) {
        options.on_output(piece);
      } else {
        result.out.append(piece);
      }
    }
  }
  // Both pipes closed: the program is ending; one that closed them and lives on
  // gets the same idle time to end.
  std::optional<Clock::time_point> deadline;
  if (options.idle_timeout) deadline = Clock::now() + *options.idle_timeout;
  if (result.timed_out || !reap(child, deadline)) {
    result.timed_out = true;
    ::kill(child.pid, SIGKILL);
    reap(child, std::nullopt);
  }
  if (WIFEXITED(child.status)) {
    result.exit_code = WEXITSTATUS(child.status);
  } else if (WIFSIGNALED(child.status)) {
    result.signal = WTERMSIG(child.status);
    result.exit_code = 128 + result.signal;
  }
  return result;
}

std::string last_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  const std::size_t newline = text.rfind('\n');
  return std::string(newline == std::string_view::npos ? text : text.substr(newline + 1));
}

}  // namespace kiln
