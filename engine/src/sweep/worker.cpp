// run_worker: one sweep worker's loop. Each trial is a run of the trial stages with
// the trial's parameters as overrides, an MLflow child run of the sweep's run; the
// objective it logs goes to the journal as an intermediate value and, with ASHA,
// decides whether the trial goes on.
#include "sweep/trial_queue.h"
#include "sweep/worker_lease.h"

#include "runner/interrupt.h"

#include <kiln/data/loader.h>
#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/runner.h>
#include <kiln/sweep/asha.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>

namespace kiln::sweep {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The objective's values as a stage logged them, by step.
struct ObjectiveRecord {
  std::map<std::int64_t, double> values;
  bool pruned = false;
};

class TrialRun {
 public:
  TrialRun(const SweepPlan& plan, const StageCatalog& catalog, const fs::path& registry_root,
           Journal& journal, const WorkerOptions& options, int number)
      : plan_(plan),
        catalog_(catalog),
        registry_root_(registry_root),
        journal_(journal),
        options_(options),
        number_(number) {}

  // Runs the trial and records its end in the journal; true when it did not fail.
  bool run() {
    const auto start = Clock::now();
    const Trial trial = journal_.load(plan_.study).trials.at(static_cast<std::size_t>(number_));
    log::info("sweep {}: trial {} starts: {}", plan_.study, number_, describe(trial));
    double stage_seconds = 0;
    std::string failure;
    try {
      const Pipeline full =
          resolve_pipeline(parse_pipeline(plan_.file, trial_overrides(plan_, trial)), catalog_);
      const Pipeline pipeline = subset(full, plan_.trial_stages);
      RunOptions options{registry_root_, {}, {}};
      options.hooks = hooks();
      const RunResult result = Runner(pipeline, options).run();
      for (const StageReport& report : result.stages) stage_seconds += report.seconds;
      if (record_.values.empty()) take_cached_objective(result);
    } catch (const InterruptedError&) {
      if (!record_.pruned) {
        journal_.with_lock(plan_.study, [&](JournalTransaction& tx) {
          requeue(tx, number_, "interrupted by a signal");
        });
        throw;
      }
    } catch (const Error& error) {
      failure = error.what();
    }
    if (failure.empty() && record_.values.empty())
      failure = fmt::format("stage '{}' never logged the objective {}", plan_.objective_stage,
                            plan_.spec.objective.metric);
    finish(failure, seconds_since(start), stage_seconds);
    return failure.empty();
  }

  const std::string& failure() const { return failure_; }

 private:
  std::string describe(const Trial& trial) const {
    std::string text;
    for (const SweepParam& param : plan_.spec.params) {
      std::string value = value_of(param, trial.params.at(param.path)).dump();
      if (value.size() > 60) value = value.substr(0, 57) + "...";
      text += fmt::format("{}{}={}", text.empty() ? "" : " ", param.path, value);
    }
    return text;
  }

  RunHooks hooks() {
    RunHooks hooks;
    hooks.run_name = fmt::format("{}-trial-{}", plan_.study, number_);
    hooks.tags = {{"mlflow.parentRunId", options_.parent_run_id},
                  {"kiln.sweep", plan_.study},
                  {"kiln.sweep.trial", std::to_string(number_)}};
    hooks.on_open = [this](const std::string& run_id) {
      journal_.set_system_attr(plan_.study, number_, kRunIdAttr, run_id);
    };
    hooks.on_metric = [this](std::string_view key, double value, std::int64_t step) {
      if (key == plan_.spec.objective.metric) report(step, value);
    };
    hooks.stop_requested = [this] { return record_.pruned; };
    return hooks;
  }

  // One value of the objective: into the journal, and past the pruner.
  void report(std::int64_t step, double value) {
    record_.values[step] = value;
    journal_.with_lock(plan_.study, [&](JournalTransaction& tx) {
      tx.set_intermediate(number_, step, value);
      if (plan_.spec.pruner.kind != PrunerKind::Asha) return;
      Study study = tx.study();
      const bool stop = should_stop(study, plan_.spec.pruner.asha, number_, step);
      const auto& before = tx.study().trials.at(static_cast<std::size_t>(number_)).system_attrs;
      for (const auto& [key, recorded] :
           study.trials.at(static_cast<std::size_t>(number_)).system_attrs.items())
        if (!before.contains(key)) tx.set_system_attr(number_, key, recorded);
      if (stop) record_.pruned = true;
    });
    if (record_.pruned)
      log::info("sweep {}: trial {} pruned at epoch {} ({} = {:.4f})", plan_.study, number_, step,
                plan_.spec.objective.metric, value);
  }

  // A trial whose stages all came from the step cache (the same parameters as an
  // earlier trial, or a sweep continued) logged nothing: its objective is what the
  // run that trained it logged.
  void take_cached_objective(const RunResult& result) {
    for (const StageReport& report : result.stages) {
      if (report.stage != plan_.objective_stage || report.run_id.empty()) continue;
      const auto run = registry::MlflowStore(registry_root_).open_run(report.run_id);
      for (const auto& point : run->metric_history(plan_.spec.objective.metric))
        report_cached(point.step, point.value);
    }
  }
  void report_cached(std::int64_t step, double value) {
    record_.values[step] = value;
    journal_.set_intermediate(plan_.study, number_, step, value);
  }

  void finish(const std::string& failure, double wall, double stage_seconds) {
    failure_ = failure;
    const double last = record_.values.empty() ? NAN : record_.values.rbegin()->second;
    TrialState state = TrialState::Complete;
    if (!failure.empty())
      state = TrialState::Fail;
    else if (record_.pruned)
      state = TrialState::Pruned;
    journal_.with_lock(plan_.study, [&](JournalTransaction& tx) {
      tx.set_system_attr(number_, kWallAttr, wall);
      if (state == TrialState::Complete) tx.set_system_attr(number_, kTrainAttr, stage_seconds);
      if (!failure.empty()) tx.set_system_attr(number_, kFailReasonAttr, failure);
      if (state == TrialState::Fail || !std::isfinite(last))
        tx.set_state(number_, TrialState::Fail);
      else
        tx.set_state(number_, state, last);
    });
    if (state == TrialState::Complete && std::isfinite(last))
      registry::MlflowStore(registry_root_)
          .open_run(options_.parent_run_id)
          ->log_metric("sweep/objective", last, number_);
    if (failure.empty())
      log::info("sweep {}: trial {} {}: {} = {:.4f} after {} epochs, {:.1f} s", plan_.study,
                number_, state == TrialState::Pruned ? "pruned" : "complete",
                plan_.spec.objective.metric, last, record_.values.size(), wall);
    else
      log::warn("sweep {}: trial {} failed: {}", plan_.study, number_, failure);
  }

  const SweepPlan& plan_;
  const StageCatalog& catalog_;
  const fs::path& registry_root_;
  Journal& journal_;
  const WorkerOptions& options_;
  int number_;
  ObjectiveRecord record_;
  std::string failure_;
};

constexpr int kFailuresInARow = 3;
// What a worker keeps of the data sets its trials read (four times the loader's
// default budget, within which a data set is resident).
constexpr std::size_t kKeptDataBytes = std::size_t{1} << 30;

}  // namespace

int run_worker(const SweepPlan& plan, const StageCatalog& catalog, const fs::path& registry_root,
               const WorkerOptions& options) {
  const SweepPaths paths = sweep_paths(registry_root, plan.study);
  WorkerLease lease(paths.workers, options.worker_id);
  Journal journal(paths.journal, options.worker_id);
  const std::unique_ptr<Sampler> sampler = make_sampler(plan.spec);
  const int budget = options.trials > 0 ? options.trials : plan.spec.trials;
  InterruptGuard signals;  // SIGINT/SIGTERM: the trial in hand is re-queued, no new one starts
  // Trials read the same data: a resident training or validation set is read and
  // inflated once per worker, not once per trial (0.25 s a trial for Fashion-MNIST).
  const data::ResidentDataRetention keep_data(kKeptDataBytes);
  int ran = 0, failed_in_a_row = 0;
  while (!interrupt_requested()) {
    if (options.deadline_unix_s && unix_now() >= *options.deadline_unix_s) {
      log::info("sweep {}: the time limit is reached; worker {} takes no more trials", plan.study,
                options.worker_id);
      break;
    }
    const std::optional<int> number =
        claim_trial(journal, plan, *sampler, paths, options.worker_id, budget);
    if (!number) break;
    TrialRun trial(plan, catalog, registry_root, journal, options, *number);
    ++ran;
    if (trial.run()) {
      failed_in_a_row = 0;
    } else if (++failed_in_a_row == kFailuresInARow) {
      throw StageError(fmt::format("sweep {}: {} trials in a row failed; the last: {}", plan.study,
                                   kFailuresInARow, trial.failure()));
    }
  }
  if (interrupt_requested())
    throw InterruptedError(
        fmt::format("sweep {}: worker {} stopped by a signal", plan.study, options.worker_id));
  return ran;
}

}  // namespace kiln::sweep
