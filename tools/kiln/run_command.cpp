// kiln run / kiln plan.
#include "commands.h"

#include <kiln/log.h>
#include <kiln/runner.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

namespace kiln::cli {
namespace {

struct RunArguments {
  std::filesystem::path pipeline;
  std::vector<std::string> overrides;
  std::vector<std::string> force;
  bool dot = false;
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

void run_pipeline(const RunArguments& arguments, const GlobalOptions& global) {
  const LoadedPipeline loaded = load_pipeline(arguments.pipeline, arguments.overrides);
  Runner runner(loaded.pipeline, {global.registry, arguments.force, {}});
  const RunResult result = runner.run();
  std::fflush(stderr);
  print_table(result.stages, true);
  const bool all_cached =
      std::all_of(result.stages.begin(), result.stages.end(),
                  [](const StageReport& report) { return report.status == StageStatus::Cached; });
  if (all_cached)
    fmt::print("nothing ran: every stage was cached (registry {})\n", global.registry.string());
  else if (result.run_id.empty())
    fmt::print("done; the stages that ran logged nothing, so no tracking run was opened (registry "
               "{})\n",
               global.registry.string());
  else
    fmt::print("run {} finished (experiment '{}', id {}; registry {})\n", result.run_id,
               loaded.pipeline.name, result.experiment_id, global.registry.string());
}

void plan_pipeline(const RunArguments& arguments, const GlobalOptions& global) {
  const LoadedPipeline loaded = load_pipeline(arguments.pipeline, arguments.overrides);
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
  run->callback([run_arguments, &global] { run_pipeline(*run_arguments, global); });

  auto plan_arguments = std::make_shared<RunArguments>();
  CLI::App* plan = app.add_subcommand("plan", "Show the stages, what is cached and what would run");
  plan->fallthrough();
  add_pipeline_arguments(*plan, *plan_arguments);
  plan->add_flag("--dot", plan_arguments->dot, "Print the DAG in Graphviz dot");
  plan->callback([plan_arguments, &global] { plan_pipeline(*plan_arguments, global); });
}

}  // namespace kiln::cli
