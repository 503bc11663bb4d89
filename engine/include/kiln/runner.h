// Runs a resolved pipeline: stages in topological order, each either taken from
// the step cache or executed and committed to it. A stage's cache key is the
// SHA-256 of (stage type, plugin name and version, its parameters with the
// content of every path parameter, the content ids of its inputs); a committed
// stage is a directory <registry>/stages/<key>/ whose manifest.json is written
// last and renamed into place with it, so a reader never takes a half-written
// stage as complete. This is also the retraining trigger: new data changes the
// import's content id and so every key downstream.
#pragma once

#include <kiln/pipeline.h>
#include <kiln/stage.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

namespace dist {
class ProcessGroup;
}

// What a sweep sets on each of its trials' runs: how the run shows in tracking, a
// look at every metric a stage logs (the pruner reads the objective there), and a
// stop request besides SIGINT/SIGTERM (a pruned trial stops at its next step).
// `kiln run` sets on_open and on_stage_failed for its on_failure: command.
struct RunHooks {
  std::string run_name;                     // empty: "<pipeline>-<time>"
  std::map<std::string, std::string> tags;  // set when the run opens: mlflow.parentRunId, ...
  std::function<void(const std::string& run_id)> on_open;  // the run was just created
  // A stage failed; called before the run is marked FAILED or KILLED and the error
  // rethrown (what `kiln run`'s on_failure: command reports as the failed stage).
  std::function<void(const std::string& stage)> on_stage_failed;
  std::function<void(std::string_view key, double value, std::int64_t step)> on_metric;
  std::function<bool()> stop_requested;
};

struct RunOptions {
  std::filesystem::path registry_root;
  std::vector<std::string> force;  // stage names to run even when cached
  Placement placement;
  // The ranks of a data-parallel job (world size above 1), else nullptr. Rank 0
  // runs the pipeline as one process would; the other ranks run the all_ranks
  // stages with it and otherwise wait for its results in the step cache.
  dist::ProcessGroup* group = nullptr;
  RunHooks hooks;
};

enum class StageStatus {
  Cached,   // taken from the step cache
  Ran,      // executed in this run
  WillRun,  // plan: not in the cache (or forced)
  Waiting,  // plan: its key depends on an upstream stage that will run
};

const char* to_string(StageStatus status) noexcept;

struct StageReport {
  std::string stage;
  std::string type;
  std::vector<std::string> needs;
  StageStatus status = StageStatus::WillRun;
  std::string cache_key;  // empty while unknown (Waiting)
  std::string reason;     // why it will run / is waiting
  double seconds = 0.0;   // for Ran
  std::string run_id;     // the run that executed it: this one, or for Cached the earlier one
  std::vector<Artifact> outputs;  // for Cached and Ran
};

struct RunResult {
  std::string run_id;  // empty when every stage was cached and no run was opened
  std::string experiment_id;
  std::vector<StageReport> stages;
};

// The cache key of `stage` given its inputs (outputs of its `needs`, in order).
std::string step_cache_key(const PipelineStage& stage, const std::vector<Artifact>& inputs);

class Runner {
 public:
  Runner(const Pipeline& pipeline, RunOptions options);

  // What run() would do now, without running or writing anything.
  std::vector<StageReport> plan() const;
  // Executes the pipeline. Throws the failing stage's error (its message prefixed
  // with the stage) after marking the run FAILED (KILLED when interrupted).
  RunResult run();

 private:
  const Pipeline& pipeline_;
  RunOptions options_;
};

}  // namespace kiln
