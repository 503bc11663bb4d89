// kiln sweep PIPELINE [overrides] [--workers N] [--trials N]; kiln sweep ls|show|status.
// The parent process plans the sweep, runs the shared stages once, starts N worker
// processes (this kiln again, with --worker-id), waits for them, and finishes: the
// winner evaluated once, the report. docs/sweeps.md.
#include "commands.h"
#include "launcher.h"
#include "wait_policy.h"

#include <kiln/cpu_threads.h>
#include <kiln/device.h>
#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/sweep/sweep.h>

#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <sstream>

namespace kiln::cli {
namespace {

struct SweepArguments {
  std::filesystem::path pipeline;
  std::vector<std::string> overrides;
  int workers = 0;  // 0: the spec's
  int trials = 0;   // 0: the spec's
  std::string worker_id, parent_run;
  double deadline = 0;
  bool prepare = false;       // kiln submit --sweep's first job: the study, no trial
  bool array_worker = false;  // a task of its job array: one worker of the study
  std::string name;           // show / status
};

// The worker id of a Slurm array task: its array job and task, and the attempt.
std::string array_worker_id() {
  auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value != nullptr ? value : "");
  };
  const std::string job = env("SLURM_ARRAY_JOB_ID").empty()
                              ? env("SLURM_JOB_ID")
                              : env("SLURM_ARRAY_JOB_ID") + "_" + env("SLURM_ARRAY_TASK_ID");
  const std::string restart = env("SLURM_RESTART_COUNT");
  return fmt::format("slurm-{}{}-{}", job.empty() ? "local" : job,
                     restart.empty() ? "" : "-r" + restart, ::getpid());
}

// The environment of worker `index` of `count`: its share of the cores, or one GPU.
std::map<std::string, std::string> worker_environment(int index, int count, int gpus) {
  std::map<std::string, std::string> env = current_environment();
  if (!env.count("KILN_NUM_THREADS"))
    env["KILN_NUM_THREADS"] = std::to_string(std::max(1, available_cores() / count));
  if (gpus > 0) {
    // One GPU per worker, from those this process may use.
    std::vector<std::string> visible;
    if (env.count("CUDA_VISIBLE_DEVICES")) {
      std::stringstream list(env["CUDA_VISIBLE_DEVICES"]);
      for (std::string id; std::getline(list, id, ',');) visible.push_back(id);
    }
    const int slot = index % gpus;
    env["CUDA_VISIBLE_DEVICES"] = slot < static_cast<int>(visible.size())
                                      ? visible[static_cast<std::size_t>(slot)]
                                      : std::to_string(slot);
  }
  env["KILN_PLAIN_PROGRESS"] = "1";  // several workers share one terminal
  return env;
}

// The parent waits while its workers run, each in its own process group. SIGINT and
// SIGTERM reach the parent alone; it passes them on (ForwardSignals), so that each
// worker re-queues its trial and stops, and then stops itself without evaluating a
// winner.
constexpr int kMaxWorkers = ForwardSignals::kMaxChildren;

// Starts the workers and waits for all of them. A worker that fails does not stop
// the others: its trial is re-queued for whoever takes the next one.
std::vector<std::string> run_workers(const SweepArguments& a, const GlobalOptions& global,
                                     const sweep::SweepPlan& plan, const std::string& parent) {
  const int count = a.workers > 0 ? a.workers : plan.spec.workers;
  const int gpus = static_cast<int>(probe_devices().devices.size());
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const double deadline =
      plan.spec.time_limit ? std::chrono::duration<double>(now).count() + *plan.spec.time_limit : 0;
  if (count > kMaxWorkers)
    throw ConfigError(fmt::format("kiln sweep --workers {}: at most {}", count, kMaxWorkers));
  std::map<pid_t, std::string> running;
  for (int i = 0; i < count; ++i) {
    const std::string id = fmt::format("{}-w{}-{}", plan.study, i, ::getpid());
    std::vector<std::string> argv = {"kiln", "--registry", global.registry.string(), "sweep",
                                     a.pipeline.string()};
    argv.insert(argv.end(), a.overrides.begin(), a.overrides.end());
    argv.insert(argv.end(),
                {"--worker-id", id, "--parent-run", parent, "--trials", std::to_string(a.trials)});
    if (deadline > 0) argv.insert(argv.end(), {"--deadline", fmt::format("{:.3f}", deadline)});
    // In its own process group: SIGINT/SIGTERM reach the parent alone, which passes
    // them on once (a second SIGINT would kill a worker before it re-queues its trial).
    const pid_t pid = spawn_self(argv, worker_environment(i, count, gpus));
    running[pid] = id;
    ForwardSignals::add(pid);
  }
  log::info("sweep {}: {} worker(s), {} thread(s) each{}", plan.study, count,
            worker_environment(0, count, gpus).at("KILN_NUM_THREADS"),
            gpus > 0 ? ", one GPU each" : "");
  std::vector<std::string> failures;
  while (!running.empty()) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw StageError(fmt::format("kiln sweep: waitpid: {}", std::strerror(errno)));
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    if (WIFSIGNALED(status))
      failures.push_back(
          fmt::format("worker {} was killed by signal {}", it->second, WTERMSIG(status)));
    else if (WEXITSTATUS(status) != 0)
      failures.push_back(fmt::format("worker {} exited with {}", it->second, WEXITSTATUS(status)));
    running.erase(it);
  }
  return failures;
}

void print_summary(const sweep::SweepOutcome& outcome, const sweep::SweepPlan& plan) {
  fmt::print(
      "sweep {}: {} trials ({} complete, {} pruned, {} failed), {} epochs, median trial "
      "overhead {:.2f} s\n",
      plan.study, outcome.trials, outcome.complete, outcome.pruned, outcome.failed, outcome.epochs,
      outcome.trial_overhead_s);
  if (outcome.best_trial)
    fmt::print("best: trial {}, {} = {:.4f}, {}\n", *outcome.best_trial, plan.spec.objective.metric,
               *outcome.best_value, outcome.best_params.dump());
  for (const auto& [key, value] : outcome.winner_metrics)
    fmt::print("winner: {} = {:.4f}\n", key, value);
}

void run_sweep(const SweepArguments& a, const GlobalOptions& global) {
  if (a.pipeline.empty()) throw ConfigError("kiln sweep: a pipeline file, or ls, show or status");
  // The file is checked on its own first, as kiln run does.
  const PipelineSource source = parse_pipeline(a.pipeline, a.overrides);
  const std::unique_ptr<StageCatalog> catalog = load_catalog(source);
  const sweep::SweepPlan plan = sweep::plan_sweep(source, a.overrides, *catalog);
  if (!a.worker_id.empty()) {
    sweep::WorkerOptions options{a.worker_id, a.parent_run, std::nullopt, a.trials};
    if (a.deadline > 0) options.deadline_unix_s = a.deadline;
    sweep::run_worker(plan, *catalog, global.registry, options);
    return;
  }
  if (a.prepare || a.array_worker) {
    // start_sweep continues a study that exists: every array task may call it.
    const std::string parent = sweep::start_sweep(plan, global.registry);
    if (a.prepare) {
      fmt::print("sweep {}: ready, parent run {}\n", plan.study, parent);
      return;
    }
    sweep::WorkerOptions options{array_worker_id(), parent, std::nullopt, a.trials};
    const int ran = sweep::run_worker(plan, *catalog, global.registry, options);
    fmt::print("sweep {}: worker {} ran {} trial(s)\n", plan.study, options.worker_id, ran);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  const std::string parent = sweep::start_sweep(plan, global.registry);
  std::vector<std::string> failures;
  {
    ForwardSignals forward;
    failures = run_workers(a, global, plan, parent);
  }
  if (ForwardSignals::received() != 0) {
    registry::MlflowStore(global.registry).open_run(parent)->end(registry::RunStatus::Killed);
    throw InterruptedError(
        fmt::format("sweep {}: stopped by signal {}; the workers re-queued "
                    "their trials: run kiln sweep again to continue",
                    plan.study, ForwardSignals::received()));
  }
  for (const auto& failure : failures) log::warn("sweep {}: {}", plan.study, failure);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const sweep::SweepOutcome outcome =
      sweep::finish_sweep(plan, *catalog, global.registry, parent, wall);
  print_summary(outcome, plan);
  if (!failures.empty())
    throw StageError(
        fmt::format("sweep {}: {}; their trials are re-queued: run kiln sweep again "
                    "to finish them",
                    plan.study, fmt::join(failures, "; ")));
}

void list(const GlobalOptions& global) {
  fmt::print("{:<24} {:>7} {:>9} {:>7} {:>7} {:>8}  {}\n", "sweep", "trials", "complete", "pruned",
             "failed", "running", "best");
  for (const std::string& name : sweep::list_sweeps(global.registry)) {
    const sweep::Study study = sweep::load_study(global.registry, name);
    const sweep::SweepOutcome o = sweep::summarize(study);
    fmt::print("{:<24} {:>7} {:>9} {:>7} {:>7} {:>8}  {}\n", name, o.trials, o.complete, o.pruned,
               o.failed, o.running,
               o.best_trial ? fmt::format("trial {}: {:.4f}", *o.best_trial, *o.best_value) : "-");
  }
}

void status(const GlobalOptions& global, const std::string& name) {
  const sweep::Study study = sweep::load_study(global.registry, name);
  const sweep::SweepOutcome o = sweep::summarize(study);
  fmt::print(
      "sweep {} ({}): {} trials: {} complete, {} pruned, {} failed, {} running, {} waiting; "
      "{} epochs\n",
      name, to_string(study.direction), o.trials, o.complete, o.pruned, o.failed, o.running,
      o.waiting, o.epochs);
  if (o.best_trial)
    fmt::print("best: trial {} = {:.6g} {}\n", *o.best_trial, *o.best_value, o.best_params.dump());
  for (const sweep::Trial& trial : study.trials)
    if (trial.state == sweep::TrialState::Running)
      fmt::print("running: trial {} at epoch {} ({})\n", trial.number,
                 trial.intermediate.empty() ? 0 : trial.intermediate.rbegin()->first,
                 trial.system_attrs.value("kiln:worker", "?"));
}

void show(const GlobalOptions& global, const std::string& name) {
  const sweep::Study study = sweep::load_study(global.registry, name);
  fmt::print("{:>5}  {:<8}  {:>10}  {:>6}  {}\n", "trial", "state", "value", "epochs", "params");
  for (const sweep::Trial& trial : study.trials) {
    nlohmann::json params = nlohmann::json::object();
    for (const auto& [key, internal] : trial.params) {
      const nlohmann::json value = sweep::to_external(trial.distributions.at(key), internal);
      params[key] = value.is_string() && value.get<std::string>().size() > 40
                        ? nlohmann::json(value.get<std::string>().substr(0, 37) + "...")
                        : value;
    }
    fmt::print("{:>5}  {:<8}  {:>10}  {:>6}  {}\n", trial.number, to_string(trial.state),
               trial.value ? fmt::format("{:.6g}", *trial.value) : "-", trial.intermediate.size(),
               params.dump());
  }
}

}  // namespace

void add_sweep_command(CLI::App& app, const GlobalOptions& global) {
  auto arguments = std::make_shared<SweepArguments>();
  CLI::App* command = app.add_subcommand(
      "sweep", "Hyperparameter sweep of a pipeline's sweep: section (docs/sweeps.md)");
  command->require_subcommand(0, 1);
  command->add_option("pipeline", arguments->pipeline, "Pipeline file with a sweep: section");
  command->add_option("overrides", arguments->overrides,
                      "Parameter overrides for every trial: <stage>.with.<param>=<value>");
  command
      ->add_option("--workers", arguments->workers,
                   "Worker processes (default: the sweep's workers)")
      ->check(CLI::PositiveNumber);
  command->add_option("--trials", arguments->trials, "Trial budget (default: the sweep's trials)")
      ->check(CLI::NonNegativeNumber);
  // How the parent starts its workers; not for people.
  command->add_option("--worker-id", arguments->worker_id)->group("");
  command->add_option("--parent-run", arguments->parent_run)->group("");
  command->add_option("--deadline", arguments->deadline)->group("");
  command->add_flag("--prepare", arguments->prepare,
                    "Only run the shared stages and create the study (kiln submit --sweep)");
  command->add_flag("--array-worker", arguments->array_worker,
                    "Be one worker of the study, as a Slurm array task (kiln submit --sweep)");

  CLI::App* ls = command->add_subcommand("ls", "The sweeps in the registry");
  ls->callback([&global] { list(global); });
  CLI::App* show_command = command->add_subcommand("show", "Every trial of a sweep");
  show_command->add_option("sweep", arguments->name, "Sweep name")->required();
  show_command->callback([&global, arguments] { show(global, arguments->name); });
  CLI::App* status_command = command->add_subcommand("status", "Where a sweep stands");
  status_command->add_option("sweep", arguments->name, "Sweep name")->required();
  status_command->callback([&global, arguments] { status(global, arguments->name); });

  command->callback([&global, arguments, command] {
    if (!command->get_subcommands().empty()) return;
    choose_wait_policy();
    run_sweep(*arguments, global);
  });
}

}  // namespace kiln::cli
