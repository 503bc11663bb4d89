#include "failure_hook.h"

#include "launcher.h"

#include <kiln/error.h>
#include <kiln/log.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <thread>
#include <vector>

namespace kiln::cli {
namespace fs = std::filesystem;
namespace {

std::atomic<int> g_signal{0};
// Named apart from libkiln's and the launcher's handlers: extern "C" names share one
// namespace.
extern "C" void kiln_failure_hook_on_signal(int signal) { g_signal.store(signal); }

// Stops the command, not kiln, on SIGINT/SIGTERM while kiln waits for it: kiln
// then still prints its own error line and exits with its own code.
class SignalsWhileWaiting {
 public:
  SignalsWhileWaiting() {
    g_signal.store(0);
    struct sigaction action {};
    action.sa_handler = kiln_failure_hook_on_signal;
    ::sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &previous_int_);
    ::sigaction(SIGTERM, &action, &previous_term_);
  }
  ~SignalsWhileWaiting() {
    ::sigaction(SIGINT, &previous_int_, nullptr);
    ::sigaction(SIGTERM, &previous_term_, nullptr);
  }
  SignalsWhileWaiting(const SignalsWhileWaiting&) = delete;
  SignalsWhileWaiting& operator=(const SignalsWhileWaiting&) = delete;

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

// Where execve finds `program`: a path with a '/' as it is (relative to `cwd`),
// else the first executable file of that name on PATH, as a shell would.
std::optional<fs::path> find_program(const std::string& program, const fs::path& cwd) {
  if (program.find('/') != std::string::npos) return cwd / program;
  const char* path = std::getenv("PATH");
  const std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = dirs.substr(start, end - start);
    const fs::path candidate = cwd / (dir.empty() ? "." : dir) / program;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

// Starts the command in its own process group (so that a timeout kills what it
// started too), stdin from /dev/null, stdout to kiln's stderr: kiln's stdout stays
// what scripts parse.
pid_t start(const fs::path& program, const std::vector<std::string>& argv,
            const std::map<std::string, std::string>& env, const fs::path& cwd) {
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp, args;
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_strings = argv;
  for (auto& arg : arg_strings) args.push_back(arg.data());
  args.push_back(nullptr);
  const std::string failed =
      fmt::format("kiln: on_failure: cannot start {} in {}\n", program.string(), cwd.string());
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return pid;
  if (pid == 0) {  // only async-signal-safe calls from here to execve
    ::setpgid(0, 0);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::dup2(STDERR_FILENO, STDOUT_FILENO);
    if (::chdir(cwd.c_str()) == 0) ::execve(program.c_str(), args.data(), envp.data());
    [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, failed.data(), failed.size());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so that killpg works before the child ran
  return pid;
}

// Waits for the command's process group leader; "" when it exited with 0, else
// what went wrong, for the warning line.
std::string wait_for(pid_t pid, double timeout_s) {
  const SignalsWhileWaiting signals;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_s));
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    const bool interrupted = g_signal.load() != 0;
    if (interrupted || std::chrono::steady_clock::now() >= deadline) {
      ::killpg(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return interrupted ? "the command was killed: kiln was interrupted while it ran"
                         : fmt::format(
                               "the command did not finish within {:g} s "
                               "(on_failure_timeout_s) and was killed",
                               timeout_s);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFSIGNALED(status))
    return fmt::format("the command was killed by signal {}", WTERMSIG(status));
  if (WEXITSTATUS(status) != 0)
    return fmt::format("the command exited with code {}", WEXITSTATUS(status));
  return "";
}

}  // namespace

FailureHook::FailureHook(const PipelineSource& source, const fs::path& registry, int rank)
    : command_(source.on_failure),
      pipeline_name_(source.name),
      pipeline_file_(fs::absolute(source.file).lexically_normal()),
      registry_(fs::absolute(registry).lexically_normal()),
      armed_(rank == 0 && !source.on_failure.argv.empty()) {}

void FailureHook::watch(RunHooks& hooks) {
  hooks.on_open = [this](const std::string& run_id) { run_id_ = run_id; };
  hooks.on_stage_failed = [this](const std::string& stage) { failed_stage_ = stage; };
}

void FailureHook::failed(std::exception_ptr error) noexcept {
  if (!armed_) return;
  armed_ = false;  // once per run, whichever guard saw the failure first
  try {
    ErrorKind kind = ErrorKind::Internal;  // what main() makes of any other exception
    std::string message = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const Error& e) {
      kind = e.kind();
      message = e.what();
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    if (kind == ErrorKind::Interrupted) return;
    std::map<std::string, std::string> env = current_environment();
    env["KILN_FAILED_STAGE"] = failed_stage_;
    env["KILN_ERROR"] = one_line(message);
    env["KILN_ERROR_KIND"] = to_string(kind);
    env["KILN_EXIT_CODE"] = std::to_string(exit_code(kind));
    env["KILN_RUN_ID"] = run_id_;
    env["KILN_PIPELINE"] = pipeline_name_;
    env["KILN_PIPELINE_FILE"] = pipeline_file_.string();
    env["KILN_REGISTRY"] = registry_.string();
    const fs::path cwd = pipeline_file_.parent_path();
    log::info("on_failure ({}): running the pipeline's command (timeout {:g} s)", command_.origin,
              command_.timeout_s);
    const std::optional<fs::path> program = find_program(command_.argv.front(), cwd);
    std::string problem;
    if (!program) {
      problem = fmt::format("cannot run '{}': not found on PATH", command_.argv.front());
    } else if (const pid_t pid = start(*program, command_.argv, env, cwd); pid < 0) {
      problem = "cannot start the command: fork failed";
    } else {
      problem = wait_for(pid, command_.timeout_s);
    }
    if (!problem.empty()) log::warn("on_failure ({}): {}", command_.origin, problem);
  } catch (const std::exception& e) {
    log::warn("on_failure ({}): not run: {}", command_.origin, e.what());
  }
}

}  // namespace kiln::cli
