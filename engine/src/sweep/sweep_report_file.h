// The files a finished sweep leaves: result.json (the winner and the sweep's
// figures, for scripts) and report.html (docs/sweeps.md), in the sweep's folder and
// in the parent run's artifacts.
#pragma once

#include <kiln/sweep/sweep.h>

namespace kiln::sweep {

nlohmann::json result_json(const SweepPlan& plan, const SweepOutcome& outcome,
                           const SweepPaths& paths, const std::string& parent_run_id,
                           double wall_seconds);

// report.html's page for the study as it stands.
std::string render_report(const SweepPlan& plan, const Study& study);

void write_sweep_files(const SweepPlan& plan, const Study& study, const SweepOutcome& outcome,
                       const SweepPaths& paths, const std::filesystem::path& registry_root,
                       const std::string& parent_run_id, double wall_seconds);

}  // namespace kiln::sweep
