// kiln jobs step -- COMMAND...: what a `kiln submit` script execs inside the job.
// It runs COMMAND (srun ... kiln run ...) and:
//   - on Slurm's warning signal (SIGUSR1 by default, sent to the batch step alone by
//     --signal=B:USR1@T), passes it to COMMAND: srun hands it to every task, each
//     rank checkpoints at its next step boundary and exits 130; then, below the
//     requeue cap (KILN_MAX_REQUEUES), the job requeues itself (scontrol requeue)
//     and resumes from that checkpoint when Slurm starts it again;
//   - SIGTERM (scancel, preemption, `scontrol requeue` from outside) is not passed
//     on: Slurm signals every task itself, and a second signal would kill a rank
//     before it checkpoints;
//   - gives the attempt's ranks a rendezvous secret (KILN_RDZV_SECRET) unless the
//     submitter exported one: srun passes it to every task, and it exists only in
//     the job's environment, never in the script or the registry;
//   - records start, end and requeue in the submission's events.jsonl;
//   - for a schedule, submits the next occurrence however this one ended (unless
//     the schedule was cancelled).
#include "job_step.h"

#include <kiln/clock.h>
#include <kiln/dist/store.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/slurm.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

std::atomic<int> g_warning{0};
std::atomic<int> g_terminated{0};
std::atomic<pid_t> g_child{0};
int g_warning_signal = SIGUSR1;

extern "C" void job_step_on_warning(int) {
  g_warning.store(1);
  if (const pid_t child = g_child.load(); child > 0) ::kill(child, g_warning_signal);
}

extern "C" void job_step_on_term(int) { g_terminated.store(1); }

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

int env_int(const char* name, int fallback) {
  try {
    return std::stoi(env_or(name, std::to_string(fallback)));
  } catch (const std::exception&) {
    throw ConfigError(fmt::format("{}='{}': expected an integer", name, env_or(name, "")));
  }
}

// The signal of a --signal value such as "B:USR1@120" or "SIGUSR2@90" or "10@60".
int signal_of(const std::string& spec) {
  std::string name = spec.substr(0, spec.find('@'));
  if (name.rfind("B:", 0) == 0 || name.rfind("R:", 0) == 0) name = name.substr(2);
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  if (name == "USR1") return SIGUSR1;
  if (name == "USR2") return SIGUSR2;
  if (name == "TERM") return SIGTERM;
  if (name == "INT") return SIGINT;
  try {
    return std::stoi(name);
  } catch (const std::exception&) {
    return SIGUSR1;
  }
}

pid_t start(const std::vector<std::string>& argv) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGUSR1, SIG_DFL);
    ::signal(SIGUSR2, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "kiln jobs step: cannot run %s: %s\n", argv[0].c_str(),
                 std::strerror(errno));
    ::_exit(127);
  }
  if (pid < 0)
    throw StageError(
        fmt::format("kiln jobs step: cannot start {}: {}", argv[0], std::strerror(errno)));
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return 1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The next occurrence of a schedule after now: first + k * every.
std::string next_occurrence(const nlohmann::json& schedule) {
  std::tm first{};
  const std::string text = schedule.at("first").get<std::string>();
  if (::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &first) == nullptr)
    throw StageError(fmt::format("job.json: schedule.first '{}' is not a time", text));
  first.tm_isdst = -1;
  const std::time_t start = std::mktime(&first), now = std::time(nullptr);
  const long every = schedule.at("every_s").get<long>();
  std::time_t next = start;
  if (next <= now) next += ((now - start) / every + 1) * every;
  char out[32];
  std::tm local{};
  ::localtime_r(&next, &local);
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%S", &local);
  return out;
}

// A schedule's next occurrence: the same script, later, under the same job name.
void submit_next(const fs::path& dir, const nlohmann::json& record, const std::string& job) {
  if (fs::exists(dir / "cancelled")) {
    slurm::append_event(dir, {{"event", "schedule_ended"}, {"job_id", job}});
    return;
  }
  const std::string begin = next_occurrence(record.at("schedule"));
  // sbatch would pass this job's SLURM_* variables (SLURM_RESTART_COUNT, say) on to
  // the next occurrence; it gets its own.
  for (char** variable = environ; *variable != nullptr;) {
    const std::string entry = *variable;
    const std::string name = entry.substr(0, entry.find('='));
    if (name.rfind("SLURM_", 0) == 0 && name != "SLURM_CONF") {
      ::unsetenv(name.c_str());  // environ shifts down: look at the same slot again
      continue;
    }
    ++variable;
  }
  try {
    const std::string next = slurm::sbatch(dir / "run.sbatch", {"--begin=" + begin});
    slurm::append_event(
        dir, {{"event", "next"}, {"job_id", job}, {"next_job_id", next}, {"begin", begin}});
    log::info("schedule: next occurrence is job {} at {}", next, begin);
  } catch (const Error& error) {
    slurm::append_event(dir, {{"event", "next_failed"}, {"job_id", job}, {"error", error.what()}});
    log::error("schedule: the next occurrence could not be submitted: {}", error.what());
  }
}

}  // namespace

int run_job_step(const std::vector<std::string>& argv) {
  if (argv.empty()) throw ConfigError("kiln jobs step: no command after --");
  const char* dir_text = std::getenv("KILN_JOB_DIR");
  if (dir_text == nullptr || *dir_text == '\0')
    throw ConfigError("kiln jobs step: KILN_JOB_DIR is not set (a kiln submit script sets it)");
  const fs::path dir = dir_text;
  const nlohmann::json record = nlohmann::json::parse(read_file(dir / "job.json"));
  const std::string job = env_or("SLURM_JOB_ID", "?");
  const int restart = env_int("SLURM_RESTART_COUNT", 0);
  const int max_requeues = env_int("KILN_MAX_REQUEUES", 3);
  g_warning_signal = signal_of(env_or("KILN_WARNING_SIGNAL", "USR1"));

  struct sigaction warning {
  }, term{};
  warning.sa_handler = job_step_on_warning;
  term.sa_handler = job_step_on_term;
  sigemptyset(&warning.sa_mask);
  sigemptyset(&term.sa_mask);
  ::sigaction(g_warning_signal, &warning, nullptr);
  ::sigaction(SIGTERM, &term, nullptr);

  nlohmann::json start_event = {{"event", "start"}, {"job_id", job}, {"restart", restart}};
  if (const char* task = std::getenv("SLURM_ARRAY_TASK_ID")) {
    start_event["array_job_id"] = env_or("SLURM_ARRAY_JOB_ID", "");
    start_event["array_task_id"] = task;
  }
  slurm::append_event(dir, start_event);
  if (env_or("KILN_RDZV_SECRET", "").empty())
    ::setenv("KILN_RDZV_SECRET", dist::make_rdzv_secret().c_str(), 1);
  log::info("job {} (restart {}): {}", job, restart, fmt::join(argv, " "));
  g_child.store(start(argv));
  // A signal that came before the child existed is passed on now.
  if (g_warning.load() != 0) ::kill(g_child.load(), g_warning_signal);
  const int code = wait_for(g_child.load());
  g_child.store(0);

  nlohmann::json end = {
      {"event", "end"}, {"job_id", job}, {"restart", restart}, {"exit_code", code}};
  int exit_code = code;
  if (g_warning.load() != 0 && code != 0) {
    if (restart < max_requeues) {
      const slurm::ProgramResult requeue = slurm::run_program({"scontrol", "requeue", job});
      if (requeue.exit_code == 0) {
        end["event"] = "requeue";
        log::info("job {}: checkpointed on Slurm's warning; requeued (restart {} of at most {})",
                  job, restart + 1, max_requeues);
        exit_code = 0;
      } else {
        end["requeue_error"] = requeue.err;
        log::error("job {}: scontrol requeue failed: {}", job, requeue.err);
      }
    } else {
      end["requeue_limit"] = max_requeues;
      log::error(
          "job {}: stopped on Slurm's warning after {} requeue(s), the cap "
          "(KILN_MAX_REQUEUES): run kiln submit again to go on from the checkpoint",
          job, restart);
    }
  }
  if (g_terminated.load() != 0) end["terminated"] = true;
  slurm::append_event(dir, end);
  // A requeued occurrence goes on as the same job; only an ended one has a successor.
  if (record.value("kind", "") == "schedule" && end["event"] == "end")
    submit_next(dir, record, job);
  return exit_code;
}

}  // namespace kiln::cli
