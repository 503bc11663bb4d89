// The stage boundary: what a plugin registers (StageType) and what a running stage
// sees of the engine (StageContext). A stage reads its inputs (artifacts of the
// stages it `needs`), writes files into its work directory, emits outputs, and logs
// to the run. The engine owns caching, commit, the registry and process placement.
#pragma once

#include <kiln/params.h>
#include <kiln/progress.h>
#include <kiln/run_log.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

namespace dist {
class ProcessGroup;
}

// Something a stage produced: a file (dataset, model), or only facts (metrics).
struct Artifact {
  std::string name;            // output name chosen by the producer: "dataset", "model"
  std::string kind;            // what downstream stages ask for: "dataset", "model", ...
  std::filesystem::path path;  // absolute when handed to a stage; empty for facts only
  std::string content_id;      // SHA-256 hex; filled by the engine when left empty
  nlohmann::json meta = nlohmann::json::object();  // small facts for downstream stages
  std::string producer;                            // pipeline name of the stage that produced it
};

// Where this process sits in a multi-process run (data-parallel ranks).
struct Placement {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
};

class StageContext {
 public:
  virtual ~StageContext();

  // The stage's name in the pipeline ("train") and its type ("train").
  virtual const std::string& name() const = 0;
  virtual const std::string& type() const = 0;
  virtual const Params& params() const = 0;

  // Outputs of the stages listed in `needs`, in that order.
  virtual const std::vector<Artifact>& inputs() const = 0;
  // The single input of `kind`; StageError listing what is there if none or several.
  const Artifact& input(std::string_view kind) const;
  const Artifact* find_input(std::string_view kind) const;

  // Empty directory for this attempt. Files emitted from here move into the step
  // cache when the stage succeeds; on failure the directory is removed.
  virtual const std::filesystem::path& work_dir() const = 0;
  // Directory that survives an interrupted attempt of the same stage with the same
  // cache key (checkpoints for resume); removed once the stage commits.
  virtual const std::filesystem::path& resume_dir() const = 0;
  // Declares an output. A relative `path` is taken inside work_dir(); an absolute
  // one must lie inside the registry (content-addressed stores such as datasets).
  virtual void emit(Artifact output) = 0;

  virtual const std::filesystem::path& registry_root() const = 0;
  // The run of this pipeline execution, opened on first use.
  virtual RunLog& run() = 0;
  virtual Progress& progress() = 0;
  // True once SIGINT/SIGTERM arrived: stop at the next step boundary (throw
  // InterruptedError after saving what resume needs).
  virtual bool stop_requested() const = 0;
  virtual const Placement& placement() const = 0;
  // The data-parallel job's ranks (kiln/dist/process_group.h) when the stage runs
  // on several (StageType::all_ranks and a world size above 1); else nullptr.
  virtual dist::ProcessGroup* process_group() const;
};

// A stage type as a plugin registers it. `check` (optional) validates parameter
// combinations the schema cannot express; it runs for every stage of the pipeline
// before any stage runs and reports problems with Params::fail.
struct StageType {
  std::string name;
  std::string summary;
  ParamSchema params;
  std::vector<std::string> consumes;  // input kinds, for `kiln plugins describe`
  std::vector<std::string> produces;  // output kinds
  // The metric keys the stage logs to the run ("train/loss", "val/accuracy"), for
  // `kiln plugins describe` and for checking a sweep's objective before it starts.
  std::vector<std::string> metrics;
  std::function<void(const Params&)> check;
  std::function<void(StageContext&)> run;
  // Runs on every rank of a data-parallel job and joins its collectives (train).
  // Other stages run on rank 0 alone while the other ranks wait for its result.
  bool all_ranks = false;
};

class StageRegistrar {
 public:
  virtual ~StageRegistrar();
  // PluginError on an empty name, a missing `run`, or a name already taken.
  virtual void add(StageType type) = 0;
};

}  // namespace kiln
