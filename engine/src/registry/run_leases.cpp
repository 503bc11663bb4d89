// Runs whose process died: the writer of a run holds a lease on
// <registry>/leases/runs/<run id>.lock while the run is open (runner/run_record.cpp);
// a RUNNING run whose lease nobody holds is closed as KILLED by the next kiln
// command that looks (a new run, kiln registry ls/show).
#include <kiln/clock.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>

#include <fmt/format.h>

namespace kiln::registry {
namespace fs = std::filesystem;

fs::path MlflowStore::run_lease_file(const std::string& run_id) const {
  return root_ / "leases" / "runs" / (run_id + ".lock");
}

std::vector<std::string> MlflowStore::close_dead_runs() {
  std::vector<std::string> closed;
  std::error_code ec;
  if (!fs::is_directory(root_ / "leases" / "runs", ec)) return closed;
  for (const ExperimentInfo& experiment : list_experiments()) {
    for (const RunInfo& info : list_runs(experiment.experiment_id)) {
      if (info.status != RunStatus::Running) continue;
      const fs::path lease = run_lease_file(info.run_id);
      if (!fs::exists(lease, ec) || lease_held(lease)) continue;
      const std::unique_ptr<MlflowRun> run = open_run(info.run_id);
      // Its writer may have closed it in the meantime, and taken its lease down.
      if (run->info().status != RunStatus::Running) continue;
      run->set_tag("kiln.killed_reason",
                   fmt::format("the process writing the run ended without closing it (kill -9, "
                               "out of memory or a lost node); closed by kiln at {}",
                               iso8601_utc()));
      run->end(RunStatus::Killed);
      fs::remove(lease, ec);
      log::warn("run {} ({}): its process is gone; marked KILLED", info.run_id, info.run_name);
      closed.push_back(info.run_id);
    }
  }
  return closed;
}

}  // namespace kiln::registry
