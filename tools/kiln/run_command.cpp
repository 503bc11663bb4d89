// kiln run / kiln plan.
#include "commands.h"
#include "failure_hook.h"
#include "launcher.h"
#include "wait_policy.h"

#include <kiln/dist/env.h>
#include <kiln/dist/process_group.h>
#include <kiln/dist/store.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/runner.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace kiln::cli {
namespace {

struct RunArguments {
  std::filesystem::path pipeline;
  std::vector<std::string> overrides;
  std::vector<std::string> force;
  std::vector<std::string> only;  // run these stages and their upstream, no others
  bool dot = false;
  int nproc = 0;     // kiln run --nproc: local ranks to launch
  std::string rdzv;  // kiln run --rdzv: where ranks meet
};

void add_pipeline_arguments(CLI::App& command, RunArguments& arguments) {
  command.add_option("pipeline", arguments.pipeline, "Pipeline file (YAML)")->required();
  command.add_option("overrides", arguments.overrides,
                     "Parameter overrides: <stage>.with.<param>=<value>");
  command.add_option("--force", arguments.force, "Run STAGE even if it is cached (repeatable)")
      ->type_name("STAGE")
      ->expected(1)
      ->allow_extra_args(false)  // `--force train lr=...`: the override stays positional
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  command
      .add_option("--only", arguments.only,
                  "Run STAGE and the stages it needs, no others (repeatable)")
      ->type_name("STAGE")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

}  // namespace

std::set<std::string> upstream_of(const Pipeline& pipeline,
                                  const std::vector<std::string>& stages) {
  std::set<std::string> found;
  std::vector<std::string> unvisited = stages;
  while (!unvisited.empty()) {
    const std::string name = unvisited.back();
    unvisited.pop_back();
    if (found.insert(name).second)
      for (const auto& need : pipeline.find(name)->needs) unvisited.push_back(need);
  }
  return found;
}

namespace {

// The pipeline cut down to `only` and their upstream; ConfigError for a name that
// is no stage of it.
void keep_only(Pipeline& pipeline, const std::vector<std::string>& only) {
  if (only.empty()) return;
  std::vector<std::string> names;
  for (const auto& stage : pipeline.stages) names.push_back(stage.name);
  for (const auto& name : only)
    if (pipeline.find(name) == nullptr) {
      const std::string near = nearest_name(name, names);
      throw ConfigError(
          fmt::format("--only {}: {} has no such stage{}", name, pipeline.file.string(),
                      near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near)));
    }
  const std::set<std::string> keep = upstream_of(pipeline, only);
  std::erase_if(pipeline.stages,
                [&](const PipelineStage& stage) { return !keep.count(stage.name); });
}

std::string summary_of(const StageReport& report) {
  std::string summary;
  for (const auto& output : report.outputs)
    if (output.meta.contains("summary") && output.meta["summary"].is_string())
      summary += (summary.empty() ? "" : "; ") + output.meta["summary"].get<std::string>();
  return summary;
}

void print_table(const std::vector<StageReport>& reports, bool with_seconds) {
  std::size_t stage_width = 5, type_width = 4;
  for (const auto& report : reports) {
    stage_width = std::max(stage_width, report.stage.size());
    type_width = std::max(type_width, report.type.size());
  }
  fmt::print("{:<{}}  {:<{}}  {:<9}  {:<12}  {}\n", "stage", stage_width, "type", type_width,
             "status", "key", with_seconds ? "seconds  result" : "detail");
  for (const auto& report : reports) {
    std::string detail;
    if (with_seconds)
      detail = fmt::format("{:>7}  {}",
                           report.status == StageStatus::Ran ? fmt::format("{:.1f}", report.seconds)
                                                             : std::string("-"),
                           summary_of(report));
    else
      detail = report.status == StageStatus::Cached ? summary_of(report) : report.reason;
    fmt::print("{:<{}}  {:<{}}  {:<9}  {:<12}  {}\n", report.stage, stage_width, report.type,
               type_width, to_string(report.status), report.cache_key.substr(0, 12), detail);
  }
}

std::string dot_quote(const std::string& text) {
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '\n') {
      quoted += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

void print_dot(const Pipeline& pipeline, const std::vector<StageReport>& reports) {
  fmt::print("digraph {} {{\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\"];\n",
             dot_quote(pipeline.name));
  for (const auto& report : reports) {
    const char* color = report.status == StageStatus::Cached ? "#d8f0d8" : "#fbe3c0";
    fmt::print(
        "  {} [label={}, fillcolor=\"{}\"];\n", dot_quote(report.stage),
        dot_quote(fmt::format("{}\n{}\n{}", report.stage, report.type, to_string(report.status))),
        color);
  }
  for (const auto& report : reports)
    for (const auto& need : report.needs)
      fmt::print("  {} -> {};\n", dot_quote(need), dot_quote(report.stage));
  fmt::print("}}\n");
}

// The exit code of a failed rank as an error kind, so that the launcher exits as
// the rank did (docs/cli.md).
ErrorKind kind_of_exit(int code) {
  switch (code) {
    case 1:
      return ErrorKind::Internal;
    case 2:
      return ErrorKind::Config;
    case 4:
      return ErrorKind::Gate;
    case 5:
      return ErrorKind::Plugin;
    case 130:
      return ErrorKind::Interrupted;
    default:
      return ErrorKind::Stage;
  }
}

// kiln run --nproc N: launch N local ranks of this same command.
void launch_ranks(const RunArguments& arguments, const GlobalOptions& global) {
  // Parsing the pipeline here reports a bad file or override once, not N times.
  {
    LoadedPipeline loaded = load_pipeline(arguments.pipeline, arguments.overrides);
    keep_only(loaded.pipeline, arguments.only);
  }
  const std::filesystem::path registry = std::filesystem::absolute(global.registry);
  LaunchPlan plan;
  plan.nproc = arguments.nproc;
  plan.argv = {"kiln"};
  if (global.verbose) plan.argv.push_back("--verbose");
  plan.argv.insert(plan.argv.end(), {"run", arguments.pipeline.string()});
  plan.argv.insert(plan.argv.end(), arguments.overrides.begin(), arguments.overrides.end());
  for (const auto& stage : arguments.force) plan.argv.insert(plan.argv.end(), {"--force", stage});
  for (const auto& stage : arguments.only) plan.argv.insert(plan.argv.end(), {"--only", stage});
  plan.env["KILN_REGISTRY"] = registry.string();
  // Local ranks talk over the loopback interface unless told otherwise.
  if (std::getenv("KILN_GLOO_HOSTNAME") == nullptr) plan.env["KILN_GLOO_HOSTNAME"] = "127.0.0.1";
  // A fresh rendezvous directory per launch: keys of an earlier job never mix in.
  std::string rdzv = arguments.rdzv;
  if (rdzv.empty() || rdzv.starts_with("file:")) {
    const std::filesystem::path parent =
        rdzv.empty() ? registry / "rdzv" : dist::parse_rendezvous(rdzv, "--rdzv").dir;
    std::filesystem::create_directories(parent);
    rdzv = "file:" + make_unique_directory(parent, "local-").string();
  } else if (dist::parse_rendezvous(rdzv, "--rdzv").kind == dist::RendezvousSpec::Kind::Tcp &&
             std::getenv("KILN_RDZV_SECRET") == nullptr) {
    // The ranks prove it to rank 0's store; nobody else learns it (a process's
    // environment is readable by its owner alone).
    plan.env["KILN_RDZV_SECRET"] = dist::make_rdzv_secret();
  }
  plan.rendezvous = rdzv;
  // Ranks fail on their own within a collective timeout; only then are they stopped.
  plan.grace = dist::group_options_from_env().timeout + std::chrono::seconds(30);
  const int code = launch_local(plan);
  if (rdzv.starts_with("file:")) {
    std::error_code ec;
    std::filesystem::remove_all(rdzv.substr(5), ec);
  }
  if (code != 0)
    throw Error(kind_of_exit(code),
                fmt::format("the {}-rank job failed with exit code {} (see the [rank K] lines "
                            "above)",
                            arguments.nproc, code));
}

void run_pipeline(const RunArguments& arguments, const GlobalOptions& global) {
  const dist::DistEnv env = dist::detect_env();
  // --nproc 1 too: one rank through the launcher and the data-parallel path.
  if (arguments.nproc >= 1 && env.launcher == "none") return launch_ranks(arguments, global);
  if (arguments.nproc >= 1)
    log::info("--nproc {} ignored: this process is rank {} of {} started by {}", arguments.nproc,
              env.rank, env.world_size, env.launcher);
  const PipelineSource source = parse_pipeline(arguments.pipeline, arguments.overrides);
  FailureHook on_failure(source, global.registry, env.rank);
  LoadedPipeline loaded = on_failure.guard([&] { return load_pipeline(source); });
  keep_only(loaded.pipeline, arguments.only);
  // Once per command, not per run opened: a run left RUNNING by a process that died
  // is closed (KILLED) before this one may go on in it (a requeued Slurm job).
  if (env.rank == 0) registry::MlflowStore(global.registry).close_dead_runs();
  RunOptions options{global.registry, arguments.force, {}};
  on_failure.watch(options.hooks);
  std::unique_ptr<dist::ProcessGroup> group;
  // A job of one rank joins a group only when kiln's launcher started it (--nproc
  // 1): a one-task Slurm allocation sets SLURM_NTASKS=1 and trains as one process.
  if (env.world_size > 1 || env.launcher == "kiln") {
    const std::string rdzv =
        !arguments.rdzv.empty() ? arguments.rdzv : dist::default_rendezvous(env, global.registry);
    group = on_failure.guard(
        [&] { return dist::init_process_group(env, rdzv, dist::group_options_from_env()); });
    options.placement = {env.rank, env.world_size, env.local_rank};
    options.group = group.get();
    log::info("dist: rank {} of {} joined ({}, launcher {}, rendezvous {})", env.rank,
              env.world_size, group->backend(), env.launcher, rdzv);
  }
  Runner runner(loaded.pipeline, options);
  const RunResult result = on_failure.guard([&] { return runner.run(); });
  group.reset();
  std::fflush(stderr);
  if (env.rank != 0) {
    fmt::print("rank {} of {}: done\n", env.rank, env.world_size);
    return;
  }
  print_table(result.stages, true);
  const bool all_cached =
      std::all_of(result.stages.begin(), result.stages.end(),
                  [](const StageReport& report) { return report.status == StageStatus::Cached; });
  if (all_cached)
    fmt::print("nothing ran: every stage was cached (registry {})\n", global.registry.string());
  else if (result.run_id.empty())
    fmt::print(
        "done; the stages that ran logged nothing, so no tracking run was opened (registry "
        "{})\n",
        global.registry.string());
  else
    fmt::print("run {} finished (experiment '{}', id {}; registry {})\n", result.run_id,
               loaded.pipeline.name, result.experiment_id, global.registry.string());
}

void plan_pipeline(const RunArguments& arguments, const GlobalOptions& global) {
  LoadedPipeline loaded = load_pipeline(arguments.pipeline, arguments.overrides);
  keep_only(loaded.pipeline, arguments.only);
  const Runner runner(loaded.pipeline, {global.registry, arguments.force, {}});
  const std::vector<StageReport> reports = runner.plan();
  if (arguments.dot) {
    print_dot(loaded.pipeline, reports);
    return;
  }
  fmt::print("pipeline '{}' ({}), registry {}\n", loaded.pipeline.name, arguments.pipeline.string(),
             global.registry.string());
  print_table(reports, false);
}

}  // namespace

void add_run_commands(CLI::App& app, const GlobalOptions& global) {
  auto run_arguments = std::make_shared<RunArguments>();
  CLI::App* run = app.add_subcommand("run", "Run a pipeline: cached stages are skipped");
  run->fallthrough();
  add_pipeline_arguments(*run, *run_arguments);
  run->add_option("--nproc", run_arguments->nproc,
                  "Data parallel: launch N local ranks of this run (like torchrun)")
      ->check(CLI::Range(1, 1024));
  run->add_option("--rdzv", run_arguments->rdzv,
                  "Where ranks meet: file:DIR (shared directory) or tcp:HOST:PORT (rank 0 "
                  "serves); default: a directory under the registry")
      ->envname("KILN_RDZV");
  run->callback([run_arguments, &global] {
    choose_wait_policy();
    run_pipeline(*run_arguments, global);
  });

  auto plan_arguments = std::make_shared<RunArguments>();
  CLI::App* plan = app.add_subcommand("plan", "Show the stages, what is cached and what would run");
  plan->fallthrough();
  add_pipeline_arguments(*plan, *plan_arguments);
  plan->add_flag("--dot", plan_arguments->dot, "Print the DAG in Graphviz dot");
  plan->callback([plan_arguments, &global] { plan_pipeline(*plan_arguments, global); });
}

}  // namespace kiln::cli
