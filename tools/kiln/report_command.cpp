// kiln report RUN|MODEL[@VERSION|@ALIAS] [-o FILE]: a static HTML page with plots
// (<kiln/report/report.h>; a bench run's page: bench_report.cpp). This file only
// decides what the argument names.
#include "bench_record.h"
#include "commands.h"

#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/registry/browse.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/registry_root.h>
#include <kiln/report/report.h>

#include <fmt/format.h>

#include <algorithm>

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;
namespace reg = kiln::registry;

struct ReportArguments {
  std::string target;
  fs::path output;
};

// The report of one run, or of one model's versions.
struct Target {
  std::string run_id;
  std::string model;
};

std::string run_with_metrics(const reg::RunSummary& run, const std::string& named) {
  if (run.metrics.empty())
    throw ConfigError(
        fmt::format("report: run {}{} has no metrics to plot (none of its stages "
                    "logged any)",
                    run.info.run_id, named));
  return run.info.run_id;
}

std::optional<reg::ModelRef> model_ref(const reg::MlflowStore& store, const std::string& text) {
  try {
    reg::ModelRef ref = reg::parse_model_ref(text);
    const auto models = store.list_models();
    if (std::find(models.begin(), models.end(), ref.model) != models.end()) return ref;
  } catch (const ConfigError&) {
    // not a model name: the argument names nothing
  }
  return std::nullopt;
}

// A run id; else a model (its versions), or one version of it (that version's run).
Target resolve(const reg::MlflowStore& store, const std::string& text) {
  if (const auto run = reg::find_run(store, text)) return {run_with_metrics(*run, ""), ""};
  const auto ref = model_ref(store, text);
  if (!ref)
    throw ConfigError(fmt::format("report: '{}' is neither a run id nor a model in {}", text,
                                  store.mlruns().string()));
  if (!ref->version && ref->alias.empty()) return {"", ref->model};
  const reg::ModelVersionInfo version = reg::resolve_model_ref(store, *ref);
  const std::string named = fmt::format(" (of {} version {})", version.model, version.version);
  return {run_with_metrics(reg::summarize_run(store, version.run_id), named), ""};
}

// A run `kiln bench` wrote: it gets the bench page (bench_report.cpp).
bool is_bench_run(const reg::MlflowStore& store, const std::string& run_id) {
  return fs::exists(store.open_run(run_id)->directory() / "artifacts" / bench::kRecordFile);
}

void write_report(const ReportArguments& arguments, const GlobalOptions& global) {
  reg::check_registry_root(global.registry, reg::RootAccess::Read);
  const reg::MlflowStore store(global.registry);
  const Target target = resolve(store, arguments.target);
  fs::path output = arguments.output;
  if (output.empty())
    output = fmt::format("report-{}.html", target.model.empty() ? target.run_id : target.model);
  if (!target.model.empty())
    write_file_atomic(output, report::render_model_report(global.registry, target.model));
  else if (is_bench_run(store, target.run_id))
    write_file_atomic(output, bench::render_report(store, target.run_id));
  else
    report::write_run_report(global.registry, target.run_id, output);
  fmt::print("report written to {}\n", output.string());
}

}  // namespace

void add_report_command(CLI::App& app, const GlobalOptions& global) {
  auto arguments = std::make_shared<ReportArguments>();
  CLI::App* command = app.add_subcommand(
      "report", "Write a static HTML report with plots of a run or of a model's versions");
  command->fallthrough();
  command
      ->add_option("target", arguments->target,
                   "Run id, model name (all its versions), or MODEL@VERSION / MODEL@ALIAS (the "
                   "run of that version)")
      ->required();
  command->add_option("-o,--output", arguments->output,
                      "Output file (default: report-<run id or model>.html)");
  command->callback([arguments, &global] { write_report(*arguments, global); });
}

}  // namespace kiln::cli
