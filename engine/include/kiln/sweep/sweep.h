// Running a sweep (`kiln sweep`, docs/sweeps.md): the plan (which stages run once,
// which each trial runs), the start (shared stages, the study in the journal, the
// sweep's parent MLflow run), the workers that take trials from the journal, and the
// finish (stale trials re-queued, the winner evaluated once on the test set, the
// report). The CLI starts the workers as processes; everything else is here.
#pragma once

#include <kiln/catalog.h>
#include <kiln/pipeline.h>
#include <kiln/sweep/spec.h>
#include <kiln/sweep/study.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::sweep {

// A pipeline with a `sweep:` section, loaded and checked; nothing written yet.
struct SweepPlan {
  std::filesystem::path file;
  std::vector<std::string> overrides;  // from the command line, under every trial's own
  Pipeline pipeline;                   // with those overrides
  SweepSpec spec;
  std::string study;                       // the sweep's name: the pipeline's (`name=` renames it)
  std::string objective_stage;             // the stage whose type logs the objective metric
  std::vector<std::string> shared_stages;  // no sampled parameter reaches them: run once
  std::vector<std::string> trial_stages;   // the objective stage and its upstream
  std::string
      spec_sha256;  // the pipeline and the space: a sweep continues only with both unchanged
};

// `source` is the file parsed with `overrides` (the command line's). ConfigError
// (file:line:col) for a pipeline without a sweep section, a parameter the objective
// does not depend on, an objective metric that no stage logs.
SweepPlan plan_sweep(const PipelineSource& source, const std::vector<std::string>& overrides,
                     const StageCatalog& catalog);

// The pipeline restricted to `stages` (which must include their upstream).
Pipeline subset(const Pipeline& pipeline, const std::vector<std::string>& stages);

// Where a sweep keeps its state in the registry: <registry>/sweeps/<study>/.
struct SweepPaths {
  std::filesystem::path dir;
  std::filesystem::path journal;  // journal.log: Optuna's journal storage format
  std::filesystem::path workers;  // <worker id>.lock: held while that worker lives
  std::filesystem::path report;   // report.html
  std::filesystem::path result;   // result.json: the winner and the sweep's figures
};
SweepPaths sweep_paths(const std::filesystem::path& registry_root, const std::string& study);
// The sweeps in a registry, by name.
std::vector<std::string> list_sweeps(const std::filesystem::path& registry_root);
// The study of sweep `name` as its journal holds it now; ConfigError if there is none.
Study load_study(const std::filesystem::path& registry_root, const std::string& name);

// Before the workers: runs the shared stages, creates the study (or continues it when
// the pipeline and space are unchanged) and the sweep's parent MLflow run. Returns
// the parent run's id.
std::string start_sweep(const SweepPlan& plan, const std::filesystem::path& registry_root);

struct WorkerOptions {
  std::string worker_id;                  // unique per worker process
  std::string parent_run_id;              // from start_sweep
  std::optional<double> deadline_unix_s;  // no trial starts after it (time_limit)
  int trials = 0;                         // the budget; 0: the spec's
};

// One worker: claims the next trial (a re-queued one first, else a new draw from
// the sampler) until the budget or the deadline is spent, and runs each. Returns
// the number of trials it ran. StageError when three trials in a row failed.
int run_worker(const SweepPlan& plan, const StageCatalog& catalog,
               const std::filesystem::path& registry_root, const WorkerOptions& options);

struct SweepOutcome {
  int trials = 0, complete = 0, pruned = 0, failed = 0, running = 0, waiting = 0;
  std::int64_t epochs = 0;  // epochs trained over all trials (intermediate values)
  std::optional<int> best_trial;
  std::optional<double> best_value;
  nlohmann::json best_params = nlohmann::json::object();  // path -> value
  std::string winner_run_id;  // the run that evaluated, gated and registered the winner
  std::map<std::string, double> winner_metrics;  // what that run logged (eval/accuracy, ...)
  double trial_overhead_s = 0;  // median over trials of wall time minus training time
};

// After the workers: re-queues trials whose worker died, runs the pipeline with the
// winner's parameters (its trained model comes from the step cache: not retrained;
// the stages after the objective's run once, on the test set), writes the report and
// result.json, and ends the parent run. Rethrows the winner run's error (a gate
// refusal, say) after writing them.
SweepOutcome finish_sweep(const SweepPlan& plan, const StageCatalog& catalog,
                          const std::filesystem::path& registry_root,
                          const std::string& parent_run_id, double wall_seconds);

// The facts of a study for `kiln sweep status` and the report.
SweepOutcome summarize(const Study& study, const SweepSpec* spec = nullptr);

}  // namespace kiln::sweep
