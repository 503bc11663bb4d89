// start_sweep and finish_sweep: what one `kiln sweep` does before and after its
// workers, and where a sweep keeps its files.
#include "sweep/sweep_report_file.h"
#include "sweep/trial_queue.h"

#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/runner.h>
#include <kiln/version.h>

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

namespace kiln::sweep {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSpecAttr = "kiln:spec_sha256";
constexpr const char* kParentRunAttr = "kiln:parent_run_id";

std::string own_worker_id(std::string_view role) {
  return fmt::format("kiln-{}-{}", role, ::getpid());
}

std::string sampler_text(const SweepSpec& spec) {
  std::string text = fmt::format("{} seed {}", to_string(spec.sampler.kind), spec.sampler.seed);
  if (spec.sampler.kind == SamplerKind::Tpe && spec.sampler.multivariate) text += " multivariate";
  return text;
}

std::string pruner_text(const SweepSpec& spec) {
  if (spec.pruner.kind != PrunerKind::Asha) return "none";
  const AshaConfig& asha = spec.pruner.asha;
  return fmt::format("asha min_epochs {} max_epochs {} reduction_factor {}", asha.min_epochs,
                     asha.max_epochs, asha.reduction_factor);
}

// The sweep's parent run: its space and settings as params, so that MLflow shows
// what was searched beside the child runs.
std::string create_parent_run(const SweepPlan& plan, const fs::path& registry_root) {
  registry::MlflowStore store(registry_root);
  const std::string experiment = store.ensure_experiment(plan.pipeline.name);
  auto run =
      store.start_run(experiment, plan.study + "-sweep",
                      {{"kiln.sweep", plan.study},
                       {"kiln.sweep.role", "parent"},
                       {"kiln.version", KILN_VERSION},
                       {"mlflow.source.name", fs::absolute(plan.file).lexically_normal().string()},
                       {"mlflow.source.type", "LOCAL"}});
  run->log_param("sweep.objective", fmt::format("{} {}", plan.spec.objective.metric,
                                                to_string(plan.spec.objective.direction)));
  run->log_param("sweep.sampler", sampler_text(plan.spec));
  run->log_param("sweep.pruner", pruner_text(plan.spec));
  run->log_param("sweep.trials", std::to_string(plan.spec.trials));
  for (const SweepParam& param : plan.spec.params)
    run->log_param("sweep.space." + param.path,
                   optuna_distribution_json(param.distribution).dump());
  return run->run_id();
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

}  // namespace

SweepPaths sweep_paths(const fs::path& registry_root, const std::string& study) {
  const fs::path dir = fs::absolute(registry_root).lexically_normal() / "sweeps" / study;
  return {dir, dir / "journal.log", dir / "workers", dir / "report.html", dir / "result.json"};
}

std::vector<std::string> list_sweeps(const fs::path& registry_root) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(registry_root / "sweeps", ec))
    if (fs::exists(entry.path() / "journal.log")) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

Study load_study(const fs::path& registry_root, const std::string& name) {
  const SweepPaths paths = sweep_paths(registry_root, name);
  if (!fs::exists(paths.journal)) {
    const std::vector<std::string> names = list_sweeps(registry_root);
    const std::string nearest = nearest_name(name, names);
    throw ConfigError(fmt::format(
        "no sweep '{}' in {}{}; sweeps there: {}", name, registry_root.string(),
        nearest.empty() ? "" : fmt::format(" (did you mean '{}'?)", nearest),
        names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "))));
  }
  return Journal(paths.journal, own_worker_id("reader")).load(name);
}

std::string start_sweep(const SweepPlan& plan, const fs::path& registry_root) {
  if (!plan.shared_stages.empty()) {
    RunOptions options{registry_root, {}, {}};
    options.hooks.run_name = plan.study + "-shared";
    options.hooks.tags = {{"kiln.sweep", plan.study}};
    Runner(subset(plan.pipeline, plan.shared_stages), options).run();
  }
  const SweepPaths paths = sweep_paths(registry_root, plan.study);
  Journal journal(paths.journal, own_worker_id("sweep"));
  const bool created = journal.create_study(plan.study, plan.spec.objective.direction);
  std::string parent;
  journal.with_lock(plan.study, [&](JournalTransaction& tx) {
    const nlohmann::json& attrs = tx.study().system_attrs;
    if (attrs.contains(kSpecAttr) && attrs[kSpecAttr] != plan.spec_sha256)
      throw ConfigError(fmt::format(
          "{}: sweep '{}' in {} was started with another pipeline or search space; to start a "
          "new sweep, give it another name (name=NEW) or remove {}",
          plan.file.string(), plan.study, paths.journal.string(), paths.dir.string()));
    if (!attrs.contains(kSpecAttr)) tx.set_study_system_attr(kSpecAttr, plan.spec_sha256);
    if (attrs.contains(kParentRunAttr)) {
      parent = attrs[kParentRunAttr].get<std::string>();
    } else {
      parent = create_parent_run(plan, registry_root);
      tx.set_study_system_attr(kParentRunAttr, parent);
    }
  });
  if (!created) {
    registry::MlflowStore(registry_root).open_run(parent)->reopen();
    const Study study = journal.load(plan.study);
    log::info("sweep {}: continuing, {} of {} trials taken", plan.study, budget_used(study),
              plan.spec.trials);
  }
  return parent;
}

SweepOutcome summarize(const Study& study, const SweepSpec* spec) {
  SweepOutcome outcome;
  std::vector<double> overheads;
  for (const Trial& trial : study.trials) {
    ++outcome.trials;
    switch (trial.state) {
      case TrialState::Complete:
        ++outcome.complete;
        break;
      case TrialState::Pruned:
        ++outcome.pruned;
        break;
      case TrialState::Fail:
        ++outcome.failed;
        break;
      case TrialState::Running:
        ++outcome.running;
        break;
      case TrialState::Waiting:
        ++outcome.waiting;
        break;
    }
    outcome.epochs += static_cast<std::int64_t>(trial.intermediate.size());
    // Only a complete trial knows how long its stages ran (a pruned one stops inside).
    if (trial.state == TrialState::Complete && trial.system_attrs.contains(kWallAttr) &&
        trial.system_attrs.contains(kTrainAttr))
      overheads.push_back(trial.system_attrs[kWallAttr].get<double>() -
                          trial.system_attrs[kTrainAttr].get<double>());
  }
  outcome.trial_overhead_s = median(overheads);
  if (const Trial* best = study.best_trial()) {
    outcome.best_trial = best->number;
    outcome.best_value = best->value;
    for (const auto& [name, internal] : best->params) {
      const SweepParam* param = nullptr;
      if (spec != nullptr)
        for (const SweepParam& p : spec->params)
          if (p.path == name) param = &p;
      outcome.best_params[name] = param != nullptr
                                      ? value_of(*param, internal)
                                      : to_external(best->distributions.at(name), internal);
    }
  }
  return outcome;
}

SweepOutcome finish_sweep(const SweepPlan& plan, const StageCatalog& catalog,
                          const fs::path& registry_root, const std::string& parent_run_id,
                          double wall_seconds) {
  const SweepPaths paths = sweep_paths(registry_root, plan.study);
  Journal journal(paths.journal, own_worker_id("finish"));
  journal.with_lock(plan.study,
                    [&](JournalTransaction& tx) { requeue_stale(tx, paths, "after the workers"); });
  const Study study = journal.load(plan.study);
  SweepOutcome outcome = summarize(study, &plan.spec);
  std::exception_ptr failure;
  if (outcome.best_trial) {
    const Trial& best = study.trials.at(static_cast<std::size_t>(*outcome.best_trial));
    log::info("sweep {}: trial {} wins with {} = {:.4f}; evaluating it once", plan.study,
              best.number, plan.spec.objective.metric, *best.value);
    RunOptions options{registry_root, {}, {}};
    options.hooks.run_name = plan.study + "-winner";
    options.hooks.tags = {{"mlflow.parentRunId", parent_run_id},
                          {"kiln.sweep", plan.study},
                          {"kiln.sweep.trial", std::to_string(best.number)},
                          {"kiln.sweep.role", "winner"}};
    try {
      const Pipeline full =
          resolve_pipeline(parse_pipeline(plan.file, trial_overrides(plan, best)), catalog);
      const RunResult result = Runner(full, options).run();
      registry::MlflowStore store(registry_root);
      // What the stages after the trials logged, in this run or (all cached) the one
      // that ran them: the winner's test-set figures.
      for (const StageReport& report : result.stages) {
        if (report.run_id.empty() || std::find(plan.trial_stages.begin(), plan.trial_stages.end(),
                                               report.stage) != plan.trial_stages.end())
          continue;
        outcome.winner_run_id = report.run_id;
        const std::vector<std::string>& declared = full.find(report.stage)->type->metrics;
        for (const auto& [key, point] : store.open_run(report.run_id)->latest_metrics())
          if (std::find(declared.begin(), declared.end(), key) != declared.end())
            outcome.winner_metrics[key] = point.value;
      }
    } catch (...) {
      failure = std::current_exception();
    }
  } else {
    failure = std::make_exception_ptr(StageError(
        fmt::format("sweep {}: no trial completed ({} pruned, {} failed); nothing to evaluate",
                    plan.study, outcome.pruned, outcome.failed)));
  }
  write_sweep_files(plan, study, outcome, paths, registry_root, parent_run_id, wall_seconds);
  auto parent = registry::MlflowStore(registry_root).open_run(parent_run_id);
  if (outcome.best_value)
    parent->log_metric("sweep/best_value", *outcome.best_value, outcome.trials);
  parent->log_metric("sweep/epochs", static_cast<double>(outcome.epochs), outcome.trials);
  if (outcome.best_trial)
    parent->set_tag("kiln.sweep.best_trial", std::to_string(*outcome.best_trial));
  parent->end(failure ? registry::RunStatus::Failed : registry::RunStatus::Finished);
  if (failure) std::rethrow_exception(failure);
  return outcome;
}

}  // namespace kiln::sweep
