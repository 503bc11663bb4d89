// Private to the runner: the tracking run of one pipeline execution, opened on
// first use so that a run in which nothing executes (all cached, or a failure
// before any stage got going) leaves no record behind.
#pragma once

#include <kiln/pipeline.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/run_log.h>

#include <filesystem>
#include <memory>
#include <string>

namespace kiln {

class RunRecord {
 public:
  RunRecord(const Pipeline& pipeline, const std::filesystem::path& registry_root, bool writer);

  // Opens the run on first call: experiment named after the pipeline, params
  // (every stage parameter), tags (kiln version, plugins, host, user, git commit of
  // the pipeline's directory), the resolved pipeline as an artifact.
  RunLog& get();
  bool opened() const noexcept { return run_ != nullptr; }
  std::string run_id() const;
  std::string experiment_id() const;

  void set_tag(const std::string& key, const std::string& value);
  void end(registry::RunStatus status);

 private:
  const Pipeline& pipeline_;
  registry::MlflowStore store_;
  bool writer_;
  std::unique_ptr<registry::MlflowRun> run_;
  std::unique_ptr<RunLog> null_log_;
};

}  // namespace kiln
