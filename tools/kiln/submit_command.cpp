// kiln submit PIPELINE [overrides] [resources] [--sweep | --split-stages | --every P]:
// writes the sbatch script(s) of a pipeline into a new submission directory of the
// registry (<registry>/jobs/, see <kiln/slurm.h>), submits them with sbatch and
// prints the job ids. Each script execs `kiln jobs step`, which runs `srun ... kiln
// run ...`, turns Slurm's warning signal into a checkpoint and a requeue, and
// records what happened (docs/slurm.md).
#include "commands.h"
#include "launcher.h"

#include <kiln/clock.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/registry/registry_root.h>
#include <kiln/slurm.h>
#include <kiln/sweep/sweep.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <unistd.h>

#include <ctime>
#include <set>

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

struct SubmitArguments {
  fs::path pipeline;
  std::vector<std::string> overrides;
  int nodes = 1, ntasks_per_node = 0, gpus_per_node = 0, cpus_per_task = 0;
  std::string time, partition, account, qos;
  std::vector<std::string> sbatch_args;
  std::string signal = "B:USR1@120";
  int max_requeues = 3;
  bool dry_run = false;
  bool sweep = false;
  int array_tasks = 4, concurrent = 0;
  bool split_stages = false;
  std::string every, at;
};

std::string host_name() {
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 ? name : "unknown";
}

// The argv of a kiln command as the job runs it: absolute paths, the overrides.
std::vector<std::string> kiln_argv(const SubmitArguments& a, const std::vector<std::string>& verb,
                                   const std::vector<std::string>& tail = {}) {
  std::vector<std::string> argv = {self_executable().string()};
  argv.insert(argv.end(), verb.begin(), verb.end());
  argv.push_back(fs::absolute(a.pipeline).lexically_normal().string());
  argv.insert(argv.end(), a.overrides.begin(), a.overrides.end());
  argv.insert(argv.end(), tail.begin(), tail.end());
  return argv;
}

// `kiln jobs step -- srun --kill-on-bad-exit=1 <command>`.
std::vector<std::string> step_command(const std::vector<std::string>& command) {
  std::vector<std::string> argv = {self_executable().string(), "jobs", "step", "--", "srun",
                                   "--kill-on-bad-exit=1"};
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

// The script every job of this submission starts from: the resources asked for,
// the environment kiln needs, the log in the submission directory.
slurm::BatchScript base_script(const SubmitArguments& a, const std::string& name,
                               const fs::path& dir, const fs::path& registry) {
  slurm::BatchScript script;
  script.job_name = "kiln-" + name;
  script.nodes = a.nodes;
  script.gpus_per_node = a.gpus_per_node;
  // One task per GPU, else per CPU rank.
  script.ntasks_per_node = a.gpus_per_node > 0 ? a.gpus_per_node : std::max(1, a.ntasks_per_node);
  script.cpus_per_task = a.cpus_per_task;
  script.time = a.time;
  script.partition = a.partition;
  script.account = a.account;
  script.qos = a.qos;
  script.signal = a.signal;
  script.extra_directives = a.sbatch_args;
  script.output = dir / "slurm-%j.out";
  script.exports = {{"KILN_REGISTRY", fs::absolute(registry).lexically_normal().string()},
                    {"KILN_JOB_DIR", dir.string()},
                    {"KILN_MAX_REQUEUES", std::to_string(a.max_requeues)},
                    {"KILN_WARNING_SIGNAL", a.signal},
                    {"KILN_PLAIN_PROGRESS", "1"}};
  if (a.cpus_per_task > 0) script.exports["KILN_NUM_THREADS"] = std::to_string(a.cpus_per_task);
  script.workdir = fs::current_path();
  script.comment = {fmt::format("Written by kiln submit on {} for {}.", iso8601_utc(),
                                fs::absolute(a.pipeline).lexically_normal().string()),
                    "docs/slurm.md: what each line and variable does."};
  return script;
}

// The stages a separate CPU job can run before training: those upstream of a
// stage that runs on every rank, and not such a stage themselves.
std::vector<std::string> data_stages(const Pipeline& pipeline) {
  std::vector<std::string> training;
  for (const auto& stage : pipeline.stages)
    if (stage.type->all_ranks) training.push_back(stage.name);
  const std::set<std::string> upstream = upstream_of(pipeline, training);
  std::vector<std::string> stages;
  for (const auto& stage : pipeline.stages)
    if (upstream.count(stage.name) && !stage.type->all_ranks) stages.push_back(stage.name);
  return stages;
}

// The first occurrence of a schedule: now, or the next HH:MM (local time).
std::time_t first_occurrence(const std::string& at) {
  const std::time_t now = std::time(nullptr);
  if (at.empty()) return now;
  int hour = -1, minute = -1;
  char rest = 0;
  if (std::sscanf(at.c_str(), "%d:%d%c", &hour, &minute, &rest) != 2 || hour < 0 || hour > 23 ||
      minute < 0 || minute > 59)
    throw ConfigError(fmt::format("--at '{}': expected HH:MM (24-hour, local time)", at));
  std::tm local{};
  ::localtime_r(&now, &local);
  local.tm_hour = hour;
  local.tm_min = minute;
  local.tm_sec = 0;
  std::time_t first = std::mktime(&local);
  if (first <= now) first += 86400;
  return first;
}

struct Job {
  std::string role;  // "run", "data", "train", "prepare", "workers", "finish"
  slurm::BatchScript script;
};

// The jobs of this submission, in submission order; a job's dependency names an
// earlier one's role ("afterok:data"), replaced by its id when submitted.
std::vector<Job> plan_jobs(const SubmitArguments& a, const LoadedPipeline& loaded,
                           const fs::path& dir, const fs::path& registry) {
  const std::string name = loaded.pipeline.name;
  const slurm::BatchScript base = base_script(a, name, dir, registry);
  std::vector<Job> jobs;
  if (a.sweep) {
    // One task each: the shared stages and the study; the workers as an array; the
    // winner's evaluation once they all ended (with any trial left re-queued).
    slurm::BatchScript one = base;
    one.nodes = 1;
    one.ntasks_per_node = 1;
    one.gpus_per_node = a.gpus_per_node > 0 ? 1 : 0;
    slurm::BatchScript prepare = one, workers = one, finish = one;
    prepare.command = step_command(kiln_argv(a, {"sweep"}, {"--prepare"}));
    workers.array = fmt::format("0-{}{}", a.array_tasks - 1,
                                a.concurrent > 0 ? fmt::format("%{}", a.concurrent) : "");
    workers.output = dir / "slurm-%A_%a.out";
    workers.dependency = "afterok:prepare";
    workers.command = step_command(kiln_argv(a, {"sweep"}, {"--array-worker"}));
    finish.dependency = "afterany:workers";
    finish.command = step_command(kiln_argv(a, {"sweep"}, {"--workers", "1"}));
    jobs = {{"prepare", prepare}, {"workers", workers}, {"finish", finish}};
  } else if (a.split_stages) {
    const std::vector<std::string> stages = data_stages(loaded.pipeline);
    if (stages.empty())
      throw ConfigError(fmt::format(
          "{}: --split-stages: no stage runs before training (no stage upstream of one that "
          "runs on every rank)",
          a.pipeline.string()));
    slurm::BatchScript data = base, train = base;
    data.nodes = 1;
    data.ntasks_per_node = 1;
    data.gpus_per_node = 0;
    std::vector<std::string> only;
    for (const auto& stage : stages) only.insert(only.end(), {"--only", stage});
    data.command = step_command(kiln_argv(a, {"run"}, only));
    train.dependency = "afterok:data";
    train.command = step_command(kiln_argv(a, {"run"}));
    jobs = {{"data", data}, {"train", train}};
  } else {
    slurm::BatchScript run = base;
    run.command = step_command(kiln_argv(a, {"run"}));
    if (!a.every.empty()) {
      run.singleton = true;  // one job name: an occurrence never overlaps the last
      run.job_name = "kiln-schedule-" + name;
    }
    jobs = {{"run", run}};
  }
  return jobs;
}

std::string resolve_dependency(const std::string& dependency,
                               const std::map<std::string, std::string>& ids) {
  const auto colon = dependency.find(':');
  if (colon == std::string::npos) return dependency;
  const std::string role = dependency.substr(colon + 1);
  return ids.count(role) ? dependency.substr(0, colon + 1) + ids.at(role) : dependency;
}

void check_arguments(const SubmitArguments& a) {
  if (!a.time.empty()) slurm::parse_time_limit(a.time, "kiln submit --time");
  if (a.gpus_per_node > 0 && a.ntasks_per_node > 0)
    throw ConfigError(
        "kiln submit: --ntasks-per-node and --gpus-per-node exclude each other (one task per "
        "GPU)");
  const int modes = int(a.sweep) + int(a.split_stages) + int(!a.every.empty());
  if (modes > 1)
    throw ConfigError("kiln submit: --sweep, --split-stages and --every exclude each other");
  if (!a.at.empty() && a.every.empty()) throw ConfigError("kiln submit: --at needs --every");
  if (!a.every.empty()) {
    slurm::parse_period(a.every, "kiln submit --every");
    first_occurrence(a.at);
  }
  if (a.concurrent < 0 || a.array_tasks < 1)
    throw ConfigError("kiln submit: --array-tasks must be at least 1 and --concurrent positive");
}

void submit(const SubmitArguments& a, const GlobalOptions& global) {
  check_arguments(a);
  // The pipeline (and a sweep's space) is checked here, once, before anything is
  // submitted: a bad file fails now, not in the queue hours later.
  const LoadedPipeline loaded = load_pipeline(a.pipeline, a.overrides);
  if (a.sweep)  // the sweep section too: its space, objective and direction
    sweep::plan_sweep(parse_pipeline(a.pipeline, a.overrides), a.overrides, *loaded.catalog);
  const std::string name = loaded.pipeline.name;
  registry::check_registry_root(global.registry, registry::RootAccess::Write);

  fs::path dir = a.dry_run ? fs::absolute(slurm::jobs_dir(global.registry)) / (name + "-DRYRUN")
                           : slurm::new_submission_dir(global.registry, name);
  std::vector<Job> jobs = plan_jobs(a, loaded, dir, global.registry);

  std::string begin;
  if (!a.every.empty()) {
    const std::time_t first = first_occurrence(a.at);
    char text[32];
    std::tm local{};
    ::localtime_r(&first, &local);
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &local);
    begin = text;
    jobs.front().script.begin = begin;
  }
  if (a.dry_run) {
    for (const Job& job : jobs) {
      slurm::BatchScript script = job.script;
      script.dependency = resolve_dependency(script.dependency, {});
      fmt::print("# {}.sbatch (--dry-run: nothing submitted)\n{}\n", job.role,
                 slurm::render_script(script));
    }
    return;
  }

  slurm::Submission submission{dir, nlohmann::json::object()};
  submission.record = {{"kind", a.sweep            ? "sweep"
                                : a.split_stages   ? "chain"
                                : !a.every.empty() ? "schedule"
                                                   : "run"},
                       {"name", name},
                       {"pipeline", fs::absolute(a.pipeline).lexically_normal().string()},
                       {"overrides", a.overrides},
                       {"submitted", iso8601_utc()},
                       {"host", host_name()},
                       {"jobs", nlohmann::json::object()}};
  if (!a.every.empty())
    submission.record["schedule"] = {
        {"every_s", slurm::parse_period(a.every, "--every")}, {"every", a.every}, {"first", begin}};
  std::map<std::string, std::string> ids;
  try {
    for (Job& job : jobs) {
      if (const auto colon = job.script.dependency.find(':'); colon != std::string::npos)
        submission.record["after"][job.role] = job.script.dependency.substr(colon + 1);
      job.script.dependency = resolve_dependency(job.script.dependency, ids);
      const fs::path file = dir / (job.role + ".sbatch");
      write_file_atomic(file, slurm::render_script(job.script));
      fs::permissions(file, fs::perms::owner_exec, fs::perm_options::add);
      ids[job.role] = slurm::sbatch(file);
      submission.record["jobs"][job.role] = ids[job.role];
    }
  } catch (const Error&) {
    if (ids.empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);  // nothing was submitted: leave no record behind
    } else {
      write_record(submission);  // what was submitted stays visible to kiln jobs
    }
    throw;
  }
  write_record(submission);
  for (const Job& job : jobs)
    fmt::print("submitted {} job {}{}\n", job.role, ids[job.role],
               job.script.array.empty() ? "" : fmt::format(" (array {})", job.script.array));
  if (!begin.empty()) fmt::print("schedule: every {}, first at {}\n", a.every, begin);
  fmt::print("records and logs: {} (kiln jobs show {})\n", dir.string(), ids[jobs.front().role]);
}

}  // namespace

void add_submit_command(CLI::App& app, const GlobalOptions& global) {
  auto a = std::make_shared<SubmitArguments>();
  CLI::App* command =
      app.add_subcommand("submit", "Submit a pipeline to Slurm as a batch job (docs/slurm.md)");
  command->add_option("pipeline", a->pipeline, "Pipeline file (YAML)")->required();
  command->add_option("overrides", a->overrides,
                      "Parameter overrides: <stage>.with.<param>=<value>");
  command->add_option("--nodes", a->nodes, "Nodes (default 1)")->check(CLI::Range(1, 100000));
  command->add_option("--ntasks-per-node", a->ntasks_per_node, "CPU ranks per node (default 1)")
      ->check(CLI::Range(1, 4096));
  command->add_option("--gpus-per-node", a->gpus_per_node, "GPUs per node: one rank per GPU")
      ->check(CLI::Range(1, 64));
  command->add_option("--cpus-per-task", a->cpus_per_task, "Cores per rank (its threads)")
      ->check(CLI::Range(1, 4096));
  command->add_option("--time", a->time, "Time limit, in Slurm's format (e.g. 2:00:00)");
  command->add_option("--partition", a->partition, "Slurm partition");
  command->add_option("--account", a->account, "Slurm account");
  command->add_option("--qos", a->qos, "Slurm QOS");
  command
      ->add_option("--sbatch-arg", a->sbatch_args,
                   "Another sbatch option, as one #SBATCH line (repeatable)")
      ->allow_extra_args(false);
  command
      ->add_option("--signal", a->signal,
                   "Slurm's warning before the time limit: checkpoint and requeue")
      ->capture_default_str();
  command->add_option("--max-requeues", a->max_requeues, "Requeues kiln asks for at most")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  command->add_flag("--dry-run", a->dry_run, "Print the script(s); submit nothing");
  command->add_flag("--sweep", a->sweep, "The pipeline's sweep as a job array of workers");
  command->add_option("--array-tasks", a->array_tasks, "--sweep: worker tasks (default 4)")
      ->check(CLI::Range(1, 100000));
  command
      ->add_option("--concurrent", a->concurrent, "--sweep: at most this many workers at once (%K)")
      ->check(CLI::Range(1, 100000));
  command->add_flag("--split-stages", a->split_stages,
                    "The stages before training as one job, training as a dependent one");
  command->add_option("--every", a->every, "Run again every PERIOD (30min, 6h, 1d)");
  command->add_option("--at", a->at, "--every: the first run at HH:MM (local time)");
  command->callback([a, &global] { submit(*a, global); });
}

}  // namespace kiln::cli
