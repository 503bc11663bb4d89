#include "sweep/sweep_report_file.h"

#include "sweep/trial_queue.h"

#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/report/sweep_report.h>

namespace kiln::sweep {

nlohmann::json result_json(const SweepPlan& plan, const SweepOutcome& outcome,
                           const SweepPaths& paths, const std::string& parent_run_id,
                           double wall_seconds) {
  nlohmann::json result = {
      {"study", plan.study},
      {"journal", paths.journal.string()},
      {"pipeline", std::filesystem::absolute(plan.file).lexically_normal().string()},
      {"objective",
       {{"metric", plan.spec.objective.metric},
        {"direction", to_string(plan.spec.objective.direction)}}},
      {"parent_run_id", parent_run_id},
      {"trials", outcome.trials},
      {"complete", outcome.complete},
      {"pruned", outcome.pruned},
      {"failed", outcome.failed},
      {"running", outcome.running},
      {"waiting", outcome.waiting},
      {"epochs", outcome.epochs},
      {"best_trial", outcome.best_trial ? nlohmann::json(*outcome.best_trial) : nullptr},
      {"best_value", outcome.best_value ? nlohmann::json(*outcome.best_value) : nullptr},
      {"best_params", outcome.best_params},
      // The winner is not retrained: its model from the trial goes on as it is.
      {"winner_retrained", false},
      {"winner_run_id", outcome.winner_run_id},
      {"winner_metrics", outcome.winner_metrics},
      {"trial_overhead_s", outcome.trial_overhead_s},
      {"wall_s", wall_seconds},
  };
  return result;
}

std::string render_report(const SweepPlan& plan, const Study& study) {
  report::SweepReportInput input;
  input.sweep_name = plan.study;
  input.study = study;
  input.objective = plan.spec.objective.metric;
  for (const Trial& trial : study.trials) {
    report::TrialFacts facts;
    if (trial.system_attrs.contains(kWallAttr))
      facts.wall_seconds = trial.system_attrs[kWallAttr].get<double>();
    facts.run_id = trial.system_attrs.value(kRunIdAttr, "");
    input.facts[trial.number] = facts;
  }
  return report::render_sweep_report(input);
}

void write_sweep_files(const SweepPlan& plan, const Study& study, const SweepOutcome& outcome,
                       const SweepPaths& paths, const std::filesystem::path& registry_root,
                       const std::string& parent_run_id, double wall_seconds) {
  const std::string result =
      result_json(plan, outcome, paths, parent_run_id, wall_seconds).dump(2) + "\n";
  const std::string report = render_report(plan, study);
  write_file_atomic(paths.result, result);
  write_file_atomic(paths.report, report);
  auto parent = registry::MlflowStore(registry_root).open_run(parent_run_id);
  write_file_atomic(parent->artifact_dir() / "sweep-report.html", report);
  write_file_atomic(parent->artifact_dir() / "result.json", result);
  log::info("sweep {}: report {}", plan.study, paths.report.string());
}

}  // namespace kiln::sweep
