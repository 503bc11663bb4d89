// kiln's tracking runs and model registry, kept under <registry>/mlruns in MLflow's
// file-store layout so that the `mlflow` Python client and UI read them as they are
// (MLflow >= 3.13 with MLFLOW_ALLOW_FILE_STORE=true). docs/formats.md describes the
// files; mlflow/store/tracking/file_store.py and mlflow/store/model_registry/
// file_store.py are the reference readers.
//
// Several processes may write one registry at once (sweep workers, concurrent
// pipelines): new experiments and model versions are numbered under fcntl locks,
// metadata is replaced atomically, and directories appear whole (built in
// <registry>/.mlruns-staging, then renamed into place), so that a crash at any point
// leaves nothing a reader would misparse.
#pragma once

#include <kiln/run_log.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::registry {

// MLflow's RunStatus numbers (mlflow/protos/service.proto), as stored in meta.yaml.
enum class RunStatus { Running = 1, Scheduled = 2, Finished = 3, Failed = 4, Killed = 5 };

// "RUNNING", "FINISHED", ... as MLflow prints them.
const char* to_string(RunStatus status) noexcept;

// MLflow's system tags that kiln writes or reads.
inline constexpr std::string_view kRunNameTag = "mlflow.runName";
inline constexpr std::string_view kUserTag = "mlflow.user";
inline constexpr std::string_view kSourceNameTag = "mlflow.source.name";
// A sweep trial is a child run: this tag on it holds the parent (sweep) run id.
inline constexpr std::string_view kParentRunTag = "mlflow.parentRunId";

// file:// URI of an absolute path, percent-encoded as MLflow writes it (Python's
// pathlib.Path.as_uri): use it for a model version's source_uri.
std::string file_uri(const std::filesystem::path& absolute_path);
// The path of a file:// URI (percent-decoded), or nothing for any other URI.
std::optional<std::filesystem::path> path_of_file_uri(std::string_view uri);

struct RunInfo {
  std::string run_id;
  std::string run_name;
  std::string experiment_id;
  std::string user;
  RunStatus status = RunStatus::Running;
  std::int64_t start_time_ms = 0;
  std::optional<std::int64_t> end_time_ms;  // empty while the run has not ended
  std::string parent_run_id;                // empty unless the run is a child run
};

struct ModelVersionInfo {
  std::string model;
  std::int64_t version = 0;
  std::string run_id;
  std::string source;  // where the model's files are (a file:// or runs:/ URI)
  std::string description;
  std::int64_t creation_time_ms = 0;
  std::int64_t last_updated_time_ms = 0;
  std::map<std::string, std::string> tags;
  std::vector<std::string> aliases;  // the aliases that point at this version, sorted
};

// One line of metrics/<key>.
struct MetricPoint {
  std::int64_t timestamp_ms = 0;
  double value = 0;
  std::int64_t step = 0;
};

struct ExperimentInfo {
  std::string experiment_id;
  std::string name;
};

// One move of an alias, from the model's alias history (docs/formats.md): kiln
// keeps it because MLflow keeps only where an alias points now, and `rollback`
// needs to know where it pointed before.
struct AliasEvent {
  std::int64_t time_ms = 0;
  std::string alias;
  std::string action;                    // "set" or "rollback"
  std::int64_t version = 0;              // where the alias points after the move
  std::optional<std::int64_t> previous;  // where it pointed before, if anywhere
  std::string user;
};

class MlflowStore;

// One tracking run: <mlruns>/<experiment id>/<run id>/. Every method writes through
// to disk at once; the object holds no buffered state, so several processes may
// hold the same run (ranks, sweep workers) and a crash loses nothing logged before.
class MlflowRun final : public kiln::RunLog {
 public:
  ~MlflowRun() override;

  const std::string& run_id() const override { return run_id_; }
  const std::string& experiment_id() const override { return experiment_id_; }

  // Appends "<ms> <value> <step>" to metrics/<key> in one write(2); NaN and
  // infinities are written "nan", "inf", "-inf", as Python's float() reads them.
  void log_metric(std::string_view key, double value, std::int64_t step) override;
  // Params are immutable, as in MLflow: the same value again is fine, another value
  // for a logged key is a ConfigError.
  void log_param(std::string_view key, std::string_view value) override;
  void set_tag(std::string_view key, std::string_view value) override;
  std::filesystem::path artifact_dir() override;

  // Sets the final status and end time (status must be Finished, Failed or Killed).
  void end(RunStatus status);
  // RUNNING again, with no end time: a continued sweep's parent run.
  void reopen();

  RunInfo info() const;
  std::filesystem::path directory() const { return directory_; }

  // --- reading back (kiln registry show / diff) --------------------------------
  std::map<std::string, std::string> params() const;
  std::map<std::string, std::string> tags() const;
  // Every point of metrics/<key> in file order; DataError naming the file for a
  // line that is not "<ms> <value> <step>".
  std::vector<MetricPoint> metric_history(std::string_view key) const;
  // The final value of each metric as MLflow reports it: the point with the
  // largest (step, timestamp, value).
  std::map<std::string, MetricPoint> latest_metrics() const;
  // Files under artifacts/, relative and sorted.
  std::vector<std::string> artifacts() const;

 private:
  friend class MlflowStore;
  MlflowRun(std::filesystem::path directory, std::string experiment_id, std::string run_id,
            std::filesystem::path staging);

  void rename_run(std::string_view run_name);

  std::filesystem::path directory_;
  std::string experiment_id_;
  std::string run_id_;
  std::filesystem::path staging_;
};

class MlflowStore {
 public:
  // Nothing is created here: <registry_root>/mlruns is made on the first write.
  explicit MlflowStore(std::filesystem::path registry_root);

  const std::filesystem::path& mlruns() const { return mlruns_; }

  // --- tracking ---------------------------------------------------------------
  // The lease the process writing run `run_id` holds while the run is open
  // (<registry>/leases/runs/<run id>.lock; a ProcessLease, <kiln/fs.h>).
  std::filesystem::path run_lease_file(const std::string& run_id) const;
  // Marks KILLED, with an end time and the tag kiln.killed_reason, every RUNNING run
  // whose lease file exists and no process holds: the process that wrote it ended
  // without closing it (kill -9, out of memory, a lost node). Runs without a lease
  // file (written by another tool, or by an older kiln) are left as they are.
  // Returns the ids of the runs it closed.
  std::vector<std::string> close_dead_runs();

  // Id of the active experiment with this name, created if there is none. The first
  // write also creates MLflow's "Default" experiment 0, as MLflow's own store does.
  std::string ensure_experiment(const std::string& name);
  std::optional<std::string> find_experiment(const std::string& name) const;
  // The active experiments, by id.
  std::vector<ExperimentInfo> list_experiments() const;

  // A new run, RUNNING, started now, with a 32-hex id; the user is taken from the
  // environment. Tags are written with the run (kParentRunTag makes a child run).
  std::unique_ptr<MlflowRun> start_run(const std::string& experiment_id,
                                       const std::string& run_name,
                                       const std::map<std::string, std::string>& tags = {});
  // The run with this id in any experiment; ConfigError if there is none.
  std::unique_ptr<MlflowRun> open_run(const std::string& run_id) const;
  // The experiment's active runs, oldest first. ConfigError for an unknown id.
  std::vector<RunInfo> list_runs(const std::string& experiment_id) const;

  // --- model registry ---------------------------------------------------------
  // Registers a new version of `model` (created if missing) and returns its number:
  // one more than the highest existing, taken under a lock, so concurrent writers
  // never share a number.
  std::int64_t create_model_version(const std::string& model, const std::string& run_id,
                                    const std::string& source_uri, const std::string& description,
                                    const std::map<std::string, std::string>& tags);
  // Points `alias` at an existing version (moving it if it pointed elsewhere) and
  // appends the move to the model's alias history. ConfigError, with nothing
  // changed, for an unknown model or version or a bad alias.
  void set_alias(const std::string& model, const std::string& alias, std::int64_t version);
  // Moves `alias` back to the version that held it before its last move (undoing
  // moves one at a time, rollbacks included) and returns that version. ConfigError,
  // with nothing changed, when there is no earlier version or it was deleted.
  std::int64_t rollback_alias(const std::string& model, const std::string& alias);
  std::optional<std::int64_t> alias_version(const std::string& model,
                                            const std::string& alias) const;
  // The model's alias moves, oldest first (empty when kiln never moved one).
  std::vector<AliasEvent> alias_history(const std::string& model) const;
  // Versions in ascending order; ConfigError for an unknown model.
  std::vector<ModelVersionInfo> list_versions(const std::string& model) const;
  // One version; ConfigError for an unknown model or version.
  ModelVersionInfo get_version(const std::string& model, std::int64_t version) const;
  std::vector<std::string> list_models() const;

 private:
  void ensure_layout();
  std::optional<std::filesystem::path> experiment_directory(const std::string& id) const;
  std::string create_experiment(const std::string& name);
  std::filesystem::path model_directory(const std::string& model) const;
  void ensure_model(const std::string& model);
  void touch_model(const std::string& model, std::int64_t now_ms);
  std::optional<ModelVersionInfo> read_version(const std::filesystem::path& directory) const;
  void require_model(const std::string& model) const;
  void require_version(const std::string& model, std::int64_t version) const;
  void publish_alias(const std::string& model, const AliasEvent& event);

  std::filesystem::path root_;
  std::filesystem::path mlruns_;
  std::filesystem::path staging_;
};

}  // namespace kiln::registry
