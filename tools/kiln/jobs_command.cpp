// kiln jobs [ls] | show JOB | cancel JOB: what was submitted from this registry and
// where each job stands: squeue while Slurm still knows the job, else the events
// its steps recorded (a registry needs no Slurm accounting). `kiln jobs step` is
// what the scripts exec (job_step.cpp).
#include "commands.h"
#include "job_step.h"

#include <kiln/clock.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/slurm.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// role -> job id, in submission order.
std::vector<std::pair<std::string, std::string>> jobs_of(const json& record) {
  std::vector<std::pair<std::string, std::string>> jobs;
  for (const char* role : {"run", "data", "train", "prepare", "workers", "finish"})
    if (record.contains("jobs") && record["jobs"].contains(role))
      jobs.emplace_back(role, record["jobs"][role].get<std::string>());
  return jobs;
}

bool event_of(const json& event, const std::string& id) {
  return event.value("job_id", "") == id || event.value("array_job_id", "") == id;
}

// What the recorded events say of job `id` (all tasks of an array job).
std::string recorded_state(const std::string& id, const std::vector<json>& events) {
  int started = 0, ok = 0, failed = 0, requeued = 0;
  std::string last_failure;
  std::map<std::string, json> last;  // per task (its own job id)
  for (const json& event : events)
    if (event_of(event, id)) last[event.value("job_id", "")] = event;
  for (const auto& [task, event] : last) {
    const std::string kind = event.value("event", "");
    if (kind == "start") ++started;
    if (kind == "requeue") ++requeued;
    if (kind == "end" || kind == "next" || kind == "next_failed" || kind == "schedule_ended") {
      const int code = event.value("exit_code", 0);
      if (code == 0) {
        ++ok;
      } else {
        ++failed;
        last_failure = fmt::format("exit {}", code);
      }
    }
  }
  if (last.empty()) return "";
  std::vector<std::string> parts;
  if (ok > 0) parts.push_back(last.size() > 1 ? fmt::format("{} completed", ok) : "COMPLETED");
  if (failed > 0)
    parts.push_back(last.size() > 1 ? fmt::format("{} failed", failed)
                                    : fmt::format("FAILED ({})", last_failure));
  if (requeued > 0)
    parts.push_back(last.size() > 1 ? fmt::format("{} requeued", requeued) : "REQUEUED");
  if (started > 0)
    parts.push_back(last.size() > 1 ? fmt::format("{} started, no end recorded", started)
                                    : "started, no end recorded (killed?)");
  return fmt::format("{}", fmt::join(parts, ", "));
}

// Whether the job ended with a non-zero exit, by its events.
std::optional<int> failed_exit(const std::string& id, const std::vector<json>& events) {
  std::optional<int> code;
  for (const json& event : events)
    if (event_of(event, id) && event.value("event", "") == "end")
      code = event.value("exit_code", 0);
  return code && *code != 0 ? code : std::nullopt;
}

std::string job_state(const slurm::Submission& submission, const std::string& role,
                      const std::string& id, const std::map<std::string, slurm::QueueState>& queue,
                      const std::vector<json>& events) {
  std::vector<std::string> queued;
  for (const auto& [job, state] : queue) {
    const std::string shown = job == id ? state.state : fmt::format("{} {}", job, state.state);
    if (job == id || job.rfind(id + "_", 0) == 0)
      queued.push_back(state.reason.empty() || state.reason == "None"
                           ? shown
                           : fmt::format("{} ({})", shown, state.reason));
  }
  const std::string slurm_says = fmt::format("{}", fmt::join(queued, ", "));
  const std::string recorded = recorded_state(id, events);
  if (!recorded.empty())
    return slurm_says.empty() ? recorded : fmt::format("{}; recorded: {}", slurm_says, recorded);
  // Never started: say why when an upstream job of the chain failed.
  const json after = submission.record.value("after", json::object());
  if (after.contains(role)) {
    const std::string upstream = after[role].get<std::string>();
    const std::string upstream_id = submission.record["jobs"].value(upstream, "");
    if (const auto code = failed_exit(upstream_id, events))
      return fmt::format("NEVER RAN: its {} job {} failed (exit {}){}", upstream, upstream_id,
                         *code, slurm_says.empty() ? "" : "; Slurm: " + slurm_says);
  }
  return slurm_says.empty() ? "not in the queue, never started (cancelled?)" : slurm_says;
}

std::vector<std::string> all_ids(const slurm::Submission& submission,
                                 const std::vector<json>& events) {
  std::vector<std::string> ids;
  for (const auto& [role, id] : jobs_of(submission.record)) ids.push_back(id);
  for (const json& event : events)
    if (event.contains("next_job_id")) ids.push_back(event["next_job_id"].get<std::string>());
  return ids;
}

// A schedule's latest occurrence: the last one submitted, as (job id, begin).
std::pair<std::string, std::string> latest_occurrence(const slurm::Submission& submission,
                                                      const std::vector<json>& events) {
  std::pair<std::string, std::string> latest = {
      submission.record["jobs"].value("run", ""),
      submission.record.value("schedule", json::object()).value("first", "")};
  for (const json& event : events)
    if (event.value("event", "") == "next")
      latest = {event["next_job_id"].get<std::string>(), event.value("begin", "")};
  return latest;
}

void list(const GlobalOptions& global) {
  const auto submissions = slurm::list_submissions(global.registry);
  if (submissions.empty()) {
    fmt::print("no jobs submitted from registry {}\n", global.registry.string());
    return;
  }
  std::vector<std::vector<json>> events_of;
  std::vector<std::string> ids;
  for (const auto& submission : submissions) {
    events_of.push_back(slurm::read_events(submission.dir));
    for (const auto& id : all_ids(submission, events_of.back())) ids.push_back(id);
  }
  const auto queue = slurm::queue_states(ids);  // one squeue for every submission
  for (std::size_t i = 0; i < submissions.size(); ++i) {
    const slurm::Submission& submission = submissions[i];
    const std::vector<json>& events = events_of[i];
    fmt::print("{}  {}  {}  submitted {}\n", submission.dir.filename().string(),
               submission.record.value("kind", "?"), submission.record.value("name", "?"),
               submission.record.value("submitted", "?"));
    for (const auto& [role, id] : jobs_of(submission.record))
      fmt::print("  {:<8} {:<10} {}\n", role, id, job_state(submission, role, id, queue, events));
    if (submission.record.contains("schedule")) {
      const auto [id, begin] = latest_occurrence(submission, events);
      if (fs::exists(submission.dir / "cancelled"))
        fmt::print("  schedule every {}: cancelled\n",
                   submission.record["schedule"].value("every", "?"));
      else
        fmt::print("  schedule every {}: latest occurrence job {} at {}: {}\n",
                   submission.record["schedule"].value("every", "?"), id, begin,
                   job_state(submission, "run", id, queue, events));
    }
  }
}

slurm::Submission find(const GlobalOptions& global, const std::string& job) {
  const auto submission = slurm::find_submission(global.registry, job);
  if (!submission)
    throw ConfigError(
        fmt::format("kiln jobs: no job {} was submitted from registry {} (kiln jobs "
                    "ls lists them)",
                    job, global.registry.string()));
  return *submission;
}

void show(const GlobalOptions& global, const std::string& job) {
  const slurm::Submission submission = find(global, job);
  const std::vector<json> events = slurm::read_events(submission.dir);
  const auto queue = slurm::queue_states(all_ids(submission, events));
  const json& r = submission.record;
  fmt::print("submission {} ({})\n", submission.dir.filename().string(), r.value("kind", "?"));
  fmt::print("pipeline:  {} {}\n", r.value("pipeline", "?"),
             fmt::join(r.value("overrides", std::vector<std::string>{}), " "));
  fmt::print("submitted: {} from {}\n", r.value("submitted", "?"), r.value("host", "?"));
  fmt::print("directory: {}\n", submission.dir.string());
  for (const auto& [role, id] : jobs_of(r))
    fmt::print("job {} {}: {}\n  script: {}\n", role, id,
               job_state(submission, role, id, queue, events),
               (submission.dir / (role + ".sbatch")).string());
  if (r.contains("schedule")) {
    const auto [id, begin] = latest_occurrence(submission, events);
    fmt::print("schedule: every {}{}; latest occurrence job {} at {}: {}\n",
               r["schedule"].value("every", "?"),
               fs::exists(submission.dir / "cancelled") ? " (cancelled)" : "", id, begin,
               job_state(submission, "run", id, queue, events));
  }
  std::vector<std::string> logs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(submission.dir, ec))
    if (entry.path().extension() == ".out") logs.push_back(entry.path().string());
  std::sort(logs.begin(), logs.end());
  for (const auto& log : logs) fmt::print("log: {}\n", log);
  for (const json& event : events) fmt::print("event: {}\n", event.dump());
}

void cancel(const GlobalOptions& global, const std::string& job) {
  const slurm::Submission submission = find(global, job);
  const std::vector<json> events = slurm::read_events(submission.dir);
  // The schedule first: an occurrence ending now must not submit a successor.
  if (submission.record.contains("schedule"))
    write_file_atomic(submission.dir / "cancelled", iso8601_utc() + "\n");
  const auto queue = slurm::queue_states(all_ids(submission, events));
  std::vector<std::string> live;
  for (const auto& id : all_ids(submission, events))
    for (const auto& [queued, state] : queue)
      if ((queued == id || queued.rfind(id + "_", 0) == 0) &&
          std::find(live.begin(), live.end(), id) == live.end())
        live.push_back(id);
  if (!live.empty()) {
    std::vector<std::string> argv = {"scancel"};
    argv.insert(argv.end(), live.begin(), live.end());
    const slurm::ProgramResult result = slurm::run_program(argv);
    if (result.exit_code != 0)
      throw StageError(fmt::format("scancel {}: {}", fmt::join(live, " "), result.err));
  }
  slurm::append_event(submission.dir, {{"event", "cancelled"}, {"jobs", live}});
  fmt::print("cancelled {}{}\n",
             live.empty() ? "nothing in the queue" : fmt::format("job(s) {}", fmt::join(live, " ")),
             submission.record.contains("schedule") ? "; the schedule submits no more jobs" : "");
}

}  // namespace

void add_jobs_command(CLI::App& app, const GlobalOptions& global) {
  auto job = std::make_shared<std::string>();
  auto step = std::make_shared<std::vector<std::string>>();
  CLI::App* command =
      app.add_subcommand("jobs", "Slurm jobs submitted from this registry (docs/slurm.md)");
  command->require_subcommand(0, 1);
  CLI::App* ls = command->add_subcommand("ls", "Every submission and its jobs' states");
  ls->callback([&global] { list(global); });
  CLI::App* show_command = command->add_subcommand("show", "A job: state, scripts, logs, events");
  show_command->add_option("job", *job, "Slurm job id (or submission directory name)")->required();
  show_command->callback([&global, job] { show(global, *job); });
  CLI::App* cancel_command =
      command->add_subcommand("cancel", "Cancel a submission's jobs, or end a schedule");
  cancel_command->add_option("job", *job, "Slurm job id (or submission directory name)")
      ->required();
  cancel_command->callback([&global, job] { cancel(global, *job); });
  // What the scripts exec inside the job; not for people.
  CLI::App* step_command = command->add_subcommand("step", "")->group("");
  step_command->add_option("command", *step)->required();
  step_command->callback([step] {
    // The step's own exit code, unchanged (main returns it without a line).
    if (const int code = run_job_step(*step); code != 0) throw CLI::RuntimeError(code);
  });
  command->callback([&global, command] {
    if (command->get_subcommands().empty()) list(global);
  });
}

}  // namespace kiln::cli
