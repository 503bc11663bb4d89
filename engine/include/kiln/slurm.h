// Slurm batch jobs: the sbatch scripts `kiln submit` writes, the Slurm programs it
// calls (sbatch, squeue, scontrol, scancel; found on PATH, so SLURM_CONF applies),
// and the records of what was submitted from a registry, under
// <registry>/jobs/<submission>/:
//   job.json      what was submitted: kind, pipeline, overrides, the Slurm job ids
//   *.sbatch      the scripts, as submitted
//   slurm-*.out   the jobs' output (sbatch --output, appended across requeues)
//   events.jsonl  one line per event a job step records (start, end, requeue, next)
//   cancelled     present once `kiln jobs cancel` ended a schedule
// docs/slurm.md is the user's view of all this.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::slurm {

// A Slurm time limit ("MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS")
// in seconds; ConfigError naming `origin` (e.g. "--time") for anything else.
long parse_time_limit(std::string_view text, std::string_view origin);
// A schedule's period ("30s", "15min", "2h", "1d"; a bare number is seconds) in
// seconds; ConfigError naming `origin` for anything else or for zero.
long parse_period(std::string_view text, std::string_view origin);

// What one sbatch script asks for and runs. Empty and zero fields are left out.
struct BatchScript {
  std::string job_name;
  int nodes = 1;
  int ntasks_per_node = 1;
  int gpus_per_node = 0;
  int cpus_per_task = 0;
  std::string time;  // checked with parse_time_limit
  std::string partition, account, qos;
  std::string array;             // "0-3%2"
  std::string dependency;        // "afterok:123"
  std::string begin;             // "now+60", "2026-12-06T03:00:00"
  bool singleton = false;        // --dependency=singleton (schedules: never two at once)
  bool requeue = true;           // --requeue with --open-mode=append
  std::string signal;            // --signal, e.g. "B:USR1@120"; empty: none
  std::filesystem::path output;  // --output (may hold %j, %A, %a)
  std::vector<std::string> extra_directives;   // --sbatch-arg, each one #SBATCH line
  std::map<std::string, std::string> exports;  // exported before the command
  std::filesystem::path workdir;               // cd here first
  std::vector<std::string> comment;            // lines of the header comment
  std::vector<std::string> command;            // exec'd; shell-quoted
};
std::string render_script(const BatchScript& script);
// `word` quoted for a POSIX shell when it needs to be.
std::string shell_quote(std::string_view word);

// A program run to completion with its output captured.
struct ProgramResult {
  int exit_code = -1;  // 128 + signal when it was killed; 127 when it could not start
  std::string out, err;
};
ProgramResult run_program(const std::vector<std::string>& argv);

// sbatch --parsable [extra...] SCRIPT: the job id. StageError holding Slurm's own
// reason ("sbatch: Invalid partition name specified") when sbatch refuses the job.
std::string sbatch(const std::filesystem::path& script, const std::vector<std::string>& extra = {});

// A job as squeue shows it: state (PENDING, RUNNING, ...) and reason.
struct QueueState {
  std::string state, reason;
};
// The jobs of `ids` that squeue still knows (array tasks as "123_4").
std::map<std::string, QueueState> queue_states(const std::vector<std::string>& ids);

// The records of a registry's submissions.
std::filesystem::path jobs_dir(const std::filesystem::path& registry_root);

struct Submission {
  std::filesystem::path dir;
  nlohmann::json record;  // job.json
};
// A new, empty submission directory <registry>/jobs/<name>-<time>-<n>.
std::filesystem::path new_submission_dir(const std::filesystem::path& registry_root,
                                         const std::string& name);
void write_record(const Submission& submission);
std::vector<Submission> list_submissions(const std::filesystem::path& registry_root);
// The submission one of whose jobs has `job_id` (an array task "123_4" matches
// array job 123), or whose directory name is `job_id`.
std::optional<Submission> find_submission(const std::filesystem::path& registry_root,
                                          const std::string& job_id);

// events.jsonl: appended by the job steps, one JSON object per line.
void append_event(const std::filesystem::path& submission_dir, nlohmann::json event);
std::vector<nlohmann::json> read_events(const std::filesystem::path& submission_dir);

}  // namespace kiln::slurm
