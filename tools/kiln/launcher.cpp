#include "launcher.h"

#include <kiln/error.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>

extern char** environ;

namespace kiln::cli {
namespace {

volatile std::sig_atomic_t g_signal = 0;
// Named apart from libkiln's handler: extern "C" names share one namespace, and the
// executable's would take the place of the library's (interrupt.cpp).
extern "C" void kiln_launcher_on_signal(int signal) { g_signal = signal; }

struct Rank {
  int index = 0;
  pid_t pid = -1;
  int out = -1, err = -1;  // read ends of the rank's stdout and stderr
  std::string out_line, err_line;
  std::optional<int> exit_code;
};

// Forwards complete lines from `fd` with the rank's prefix; false at EOF.
bool pump(int fd, std::string& pending, int index, std::FILE* sink) {
  char buffer[65536];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) {
    if (!pending.empty()) fmt::print(sink, "[rank {}] {}\n", index, pending);
    pending.clear();
    std::fflush(sink);
    return false;
  }
  pending.append(buffer, static_cast<std::size_t>(n));
  std::size_t start = 0, newline;
  while ((newline = pending.find('\n', start)) != std::string::npos) {
    fmt::print(sink, "[rank {}] {}\n", index,
               std::string_view(pending).substr(start, newline - start));
    start = newline + 1;
  }
  pending.erase(0, start);
  std::fflush(sink);
  return true;
}

Rank spawn(const LaunchPlan& plan, int index) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw StageError(fmt::format("kiln run --nproc: pipe: {}", std::strerror(errno)));
  std::map<std::string, std::string> env = current_environment();
  for (const auto& [key, value] : plan.env) env[key] = value;
  env["KILN_RANK"] = std::to_string(index);
  env["KILN_WORLD_SIZE"] = std::to_string(plan.nproc);
  env["KILN_LOCAL_RANK"] = std::to_string(index);
  env["KILN_RDZV"] = plan.rendezvous;
  const pid_t pid = spawn_self(plan.argv, env, out[1], err[1]);
  ::close(out[1]);
  ::close(err[1]);
  return {index, pid, out[0], err[0], {}, {}, std::nullopt};
}

void signal_all(std::vector<Rank>& ranks, int signal) {
  for (const Rank& rank : ranks)
    if (!rank.exit_code) ::kill(rank.pid, signal);
}

}  // namespace

std::filesystem::path self_executable() { return std::filesystem::read_symlink("/proc/self/exe"); }

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::size_t eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

pid_t spawn_self(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env, int stdout_fd, int stderr_fd) {
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_strings = argv;
  for (auto& s : arg_strings) args.push_back(s.data());
  args.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw StageError(fmt::format("kiln: fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ::setpgid(0, 0);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    if (stdout_fd >= 0) ::dup2(stdout_fd, STDOUT_FILENO);
    if (stderr_fd >= 0) ::dup2(stderr_fd, STDERR_FILENO);
    ::execve("/proc/self/exe", args.data(), envp.data());
    std::fprintf(stderr, "kiln: cannot start %s: %s\n", argv.empty() ? "kiln" : argv[0].c_str(),
                 std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

int launch_local(const LaunchPlan& plan) {
  struct sigaction action {};
  action.sa_handler = kiln_launcher_on_signal;
  ::sigemptyset(&action.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);

  std::vector<Rank> ranks;
  for (int i = 0; i < plan.nproc; ++i) ranks.push_back(spawn(plan, i));
  std::string pids;
  for (const Rank& rank : ranks) pids += (pids.empty() ? "" : " ") + std::to_string(rank.pid);
  fmt::print(stderr, "kiln: launched {} ranks (pids {}), rendezvous {}\n", plan.nproc, pids,
             plan.rendezvous);

  using Clock = std::chrono::steady_clock;
  std::optional<Rank*> first_failure;
  // When to escalate to SIGTERM, then SIGKILL (never, until a rank fails).
  Clock::time_point term_at = Clock::time_point::max(), kill_at = Clock::time_point::max();
  std::size_t open_streams = 2 * ranks.size();
  int exited = 0;
  while (exited < plan.nproc || open_streams > 0) {
    if (g_signal != 0) {
      signal_all(ranks, g_signal);
      g_signal = 0;
    }
    std::vector<pollfd> fds;
    std::vector<std::pair<Rank*, bool>> owners;  // (rank, is stdout)
    for (Rank& rank : ranks) {
      if (rank.out >= 0) fds.push_back({rank.out, POLLIN, 0}), owners.emplace_back(&rank, true);
      if (rank.err >= 0) fds.push_back({rank.err, POLLIN, 0}), owners.emplace_back(&rank, false);
    }
    if (!fds.empty())
      ::poll(fds.data(), fds.size(), 100);
    else
      ::usleep(50000);
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      auto [rank, is_out] = owners[i];
      int& fd = is_out ? rank->out : rank->err;
      if (!pump(fd, is_out ? rank->out_line : rank->err_line, rank->index,
                is_out ? stdout : stderr)) {
        ::close(fd);
        fd = -1;
        --open_streams;
      }
    }
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (Rank& rank : ranks) {
        if (rank.pid != pid) continue;
        rank.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        ++exited;
        if (*rank.exit_code != 0 && !first_failure) {
          first_failure = &rank;
          term_at = Clock::now() + plan.grace;
          fmt::print(stderr, "kiln: rank {} {}{}\n", rank.index,
                     WIFSIGNALED(status) ? fmt::format("was killed by signal {}", WTERMSIG(status))
                                         : fmt::format("failed with exit code {}", *rank.exit_code),
                     exited < plan.nproc
                         ? fmt::format("; waiting up to {:.0f} s for the others to stop",
                                       plan.grace.count() / 1e3)
                         : "");
        }
      }
    }
    const auto now = Clock::now();
    if (now >= term_at && exited < plan.nproc) {
      fmt::print(stderr, "kiln: stopping the remaining ranks (SIGTERM)\n");
      signal_all(ranks, SIGTERM);
      term_at = Clock::time_point::max();
      kill_at = now + std::chrono::seconds(5);
    }
    if (now >= kill_at && exited < plan.nproc) {
      signal_all(ranks, SIGKILL);
      kill_at = Clock::time_point::max();
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (!first_failure) return 0;
  std::string summary;
  for (const Rank& rank : ranks)
    summary +=
        fmt::format("{}rank {}: {}", summary.empty() ? "" : ", ", rank.index, *rank.exit_code);
  fmt::print(stderr, "kiln: the job failed (exit codes: {})\n", summary);
  return *(*first_failure)->exit_code;
}

namespace {

volatile std::sig_atomic_t g_forwarded_signal = 0;
pid_t g_children[ForwardSignals::kMaxChildren] = {};
volatile std::sig_atomic_t g_child_count = 0;

extern "C" void kiln_forward_signal(int signal) {
  g_forwarded_signal = signal;
  for (int i = 0; i < g_child_count; ++i)
    if (g_children[i] > 0) ::kill(g_children[i], signal);
}

}  // namespace

ForwardSignals::ForwardSignals() {
  g_forwarded_signal = 0;
  g_child_count = 0;
  struct sigaction action {};
  action.sa_handler = kiln_forward_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &previous_int_);
  ::sigaction(SIGTERM, &action, &previous_term_);
}

ForwardSignals::~ForwardSignals() {
  ::sigaction(SIGINT, &previous_int_, nullptr);
  ::sigaction(SIGTERM, &previous_term_, nullptr);
  g_child_count = 0;
}

void ForwardSignals::add(pid_t child) {
  if (g_child_count >= kMaxChildren)
    throw InternalError(fmt::format("ForwardSignals: more than {} children", kMaxChildren));
  g_children[g_child_count] = child;
  g_child_count = g_child_count + 1;
}

int ForwardSignals::received() { return g_forwarded_signal; }

}  // namespace kiln::cli
