// Private to the runner: the tracking run of one pipeline execution, opened on
// first use so that a run in which nothing executes (all cached, or a failure
// before any stage got going) leaves no record behind.
#pragma once

#include <kiln/fs.h>
#include <kiln/pipeline.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/run_log.h>
#include <kiln/runner.h>
#include <kiln/tensorboard.h>

#include <filesystem>
#include <memory>
#include <string>

namespace kiln {

class RunRecord {
 public:
  // ConfigError when `registry_root` exists and is not a registry (a file, or a
  // directory of something else): checked before any stage writes there.
  RunRecord(const Pipeline& pipeline, const std::filesystem::path& registry_root, bool writer,
            const RunHooks& hooks = {});
  ~RunRecord();

  // Opens the run on first call: experiment named after the pipeline, params
  // (every stage parameter), tags (kiln version, plugins, host, user, devices, git
  // commit of the pipeline's directory, Slurm ids), the resolved pipeline as an
  // artifact, and from then on the log lines in artifacts/kiln.log (with those
  // logged before the run opened).
  RunLog& get();
  bool opened() const noexcept { return run_ != nullptr; }
  std::string run_id() const;
  std::string experiment_id() const;

  void set_tag(const std::string& key, const std::string& value);
  void end(registry::RunStatus status);

 private:
  class LogCopy;  // the log lines of this execution, copied into artifacts/kiln.log

  class Observed;  // the hooks' look at every metric

  const Pipeline& pipeline_;
  const RunHooks& hooks_;
  registry::MlflowStore store_;
  bool writer_;
  std::unique_ptr<registry::MlflowRun> run_;
  // Held while run_ is open: a run whose process died shows as such
  // (MlflowStore::close_dead_runs).
  std::unique_ptr<ProcessLease> lease_;
  // Wraps run_: metrics also go to a TensorBoard event file. Declared after run_ so
  // it is destroyed first.
  std::unique_ptr<tensorboard::TensorBoardRunLog> tensorboard_;
  std::unique_ptr<Observed> observed_;  // wraps tensorboard_ when hooks.on_metric is set
  std::unique_ptr<RunLog> null_log_;
  std::unique_ptr<LogCopy> log_copy_;
};

}  // namespace kiln
