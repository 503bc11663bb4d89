// MlflowStore: the store's layout, experiments and runs. The model registry half is
// in model_registry.cpp.
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/names.h>
#include <kiln/registry/registry_root.h>

#include "registry/meta_yaml.h"
#include "registry/run_files.h"
#include "registry/store_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <tuple>
#include <utility>

namespace kiln::registry {
namespace fs = std::filesystem;
using namespace detail;

namespace {

struct Experiment {
  fs::path directory;
  ExperimentMeta meta;
};

// The experiments directly under `parent` (mlruns/ or mlruns/.trash/) whose
// meta.yaml reads and matches their directory name, as MLflow's _get_experiment
// requires. Directories without meta.yaml (being created by MLflow) are skipped.
std::vector<Experiment> read_experiments(const fs::path& parent) {
  std::vector<Experiment> experiments;
  for (const std::string& name : subdirectories(parent)) {
    if (name.starts_with(".") || name == kModelsDir) continue;
    const fs::path file = parent / name / kMetaFile;
    try {
      const auto text = read_if_exists(parent, file);
      if (!text) continue;
      ExperimentMeta meta = parse_experiment_meta(*text, file);
      if (meta.experiment_id == name) experiments.push_back({parent / name, std::move(meta)});
    } catch (const DataError& error) {
      log::warn("registry: skipping experiment: {}", error.what());
    }
  }
  return experiments;
}

// One more than the largest numeric experiment id, active or deleted. MLflow itself
// draws random ids; counting up keeps kiln's short and never meets MLflow's.
std::string next_experiment_id(const fs::path& mlruns) {
  std::int64_t largest = 0;
  for (const fs::path& parent : {mlruns, mlruns / kTrashDir}) {
    for (const std::string& name : subdirectories(parent)) {
      std::int64_t id = 0;
      const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), id);
      if (error == std::errc() && end == name.data() + name.size()) largest = std::max(largest, id);
    }
  }
  if (largest == std::numeric_limits<std::int64_t>::max())
    throw DataError(mlruns.string() + ": an experiment id is the largest integer; none is left");
  return std::to_string(largest + 1);
}

// The folders of an experiment that are not runs (FileStore.RESERVED_EXPERIMENT_FOLDERS).
bool is_reserved_experiment_folder(const std::string& name) {
  return name == "tags" || name == "datasets" || name == "traces" || name == "models" ||
         name.starts_with(".");
}

}  // namespace

MlflowStore::MlflowStore(fs::path registry_root)
    : root_(fs::absolute(std::move(registry_root)).lexically_normal()),
      mlruns_(root_ / "mlruns"),
      staging_(root_ / ".mlruns-staging") {}

// mlruns/ as MLflow's own stores leave it: the Default experiment 0, .trash/ and
// models/. Readers then need not create anything, and a read-only reader works.
void MlflowStore::ensure_layout() {
  if (path_exists(mlruns_ / kTrashDir) && path_exists(mlruns_ / kModelsDir)) return;
  FileLock lock(mlruns_ / kExperimentsLock);
  const bool has_default = path_exists(mlruns_ / kDefaultExperimentId) ||
                           path_exists(mlruns_ / kTrashDir / kDefaultExperimentId);
  if (!has_default) {
    const fs::path built = Staging(staging_).new_directory("experiment-");
    ExperimentMeta meta;
    meta.experiment_id = kDefaultExperimentId;
    meta.name = kDefaultExperimentName;
    meta.artifact_location = file_uri(mlruns_ / kDefaultExperimentId);
    meta.creation_time = meta.last_update_time = now_ms();
    write_file_atomic(built / kMetaFile, to_yaml(meta));
    Staging(staging_).publish_directory(built, mlruns_ / kDefaultExperimentId);
  }
  for (const char* dir : {kTrashDir, kModelsDir}) make_directories(mlruns_ / dir);
}

std::optional<fs::path> MlflowStore::experiment_directory(const std::string& id) const {
  validate_experiment_id(id);
  const fs::path dir = mlruns_ / id;
  if (!path_exists(dir / kMetaFile)) return std::nullopt;
  return dir;
}

std::optional<std::string> MlflowStore::find_experiment(const std::string& name) const {
  validate_experiment_name(name);
  for (const Experiment& experiment : read_experiments(mlruns_))
    if (experiment.meta.name == name && experiment.meta.lifecycle_stage == "active")
      return experiment.meta.experiment_id;
  return std::nullopt;
}

std::vector<ExperimentInfo> MlflowStore::list_experiments() const {
  std::vector<ExperimentInfo> experiments;
  for (const Experiment& experiment : read_experiments(mlruns_))
    if (experiment.meta.lifecycle_stage == "active")
      experiments.push_back({experiment.meta.experiment_id, experiment.meta.name});
  return experiments;
}

std::string MlflowStore::ensure_experiment(const std::string& name) {
  validate_experiment_name(name);
  if (auto id = find_experiment(name)) return *id;
  ensure_layout();
  FileLock lock(mlruns_ / kExperimentsLock);
  return create_experiment(name);
}

// Called under the experiments lock: looks again (another process may have created
// it meanwhile), then numbers and publishes a new experiment.
std::string MlflowStore::create_experiment(const std::string& name) {
  for (const fs::path& parent : {mlruns_, mlruns_ / kTrashDir}) {
    for (const Experiment& experiment : read_experiments(parent)) {
      if (experiment.meta.name != name) continue;
      if (parent == mlruns_ && experiment.meta.lifecycle_stage == "active")
        return experiment.meta.experiment_id;
      throw ConfigError(fmt::format(
          "registry: experiment name '{}': experiment {} has it and is deleted; restore it "
          "(mlflow experiments restore) or pick another name",
          name, experiment.meta.experiment_id));
    }
  }
  ExperimentMeta meta;
  meta.experiment_id = next_experiment_id(mlruns_);
  meta.name = name;
  meta.artifact_location = file_uri(mlruns_ / meta.experiment_id);
  meta.creation_time = meta.last_update_time = now_ms();
  const Staging staging(staging_);
  const fs::path built = staging.new_directory("experiment-");
  write_file_atomic(built / kMetaFile, to_yaml(meta));
  staging.publish_directory(built, mlruns_ / meta.experiment_id);
  return meta.experiment_id;
}

namespace {

void validate_run_tags(const std::map<std::string, std::string>& tags) {
  for (const auto& [key, value] : tags) {
    validate_key("tag key", key);
    validate_value("tag", key, value, kMaxTagValueLength);
  }
}

std::string pick_run_name(const std::string& run_name,
                          const std::map<std::string, std::string>& tags, const std::string& id) {
  if (!run_name.empty()) return run_name;
  if (const auto it = tags.find(std::string(kRunNameTag)); it != tags.end() && !it->second.empty())
    return it->second;
  return "run-" + id.substr(0, 8);
}

// The tags a new run starts with: the caller's, then MLflow's system tags that the
// caller did not set itself.
std::map<std::string, std::string> initial_tags(std::map<std::string, std::string> tags,
                                                const std::string& run_name,
                                                const std::string& user) {
  tags[std::string(kRunNameTag)] = run_name;
  tags.try_emplace(std::string(kUserTag), user);
  tags.try_emplace(std::string(kSourceNameTag), "kiln");
  return tags;
}

}  // namespace

std::unique_ptr<MlflowRun> MlflowStore::start_run(const std::string& experiment_id,
                                                  const std::string& run_name,
                                                  const std::map<std::string, std::string>& tags) {
  validate_experiment_id(experiment_id);
  validate_value("run name", run_name, run_name, kMaxTagValueLength);
  validate_run_tags(tags);
  ensure_layout();
  const auto experiment_dir = experiment_directory(experiment_id);
  if (!experiment_dir)
    throw ConfigError(fmt::format("registry: experiment id '{}': no such experiment in {}",
                                  experiment_id, mlruns_.string()));

  RunMeta meta;
  meta.run_id = new_run_id();
  meta.run_name = pick_run_name(run_name, tags, meta.run_id);
  meta.experiment_id = experiment_id;
  meta.user_id = current_user();
  meta.artifact_uri = file_uri(*experiment_dir / meta.run_id / "artifacts");
  meta.status = static_cast<int>(RunStatus::Running);
  meta.start_time = now_ms();

  // The run directory is built whole in staging and renamed into place: MLflow never
  // sees a run without its meta.yaml, tags or the folders _is_valid_run_directory
  // requires.
  const Staging staging(staging_);
  staging.remove_stale();
  const fs::path built = staging.new_directory("run-");
  for (const char* dir : {"metrics", "params", "artifacts", "tags"}) make_directories(built / dir);
  write_file_atomic(built / kMetaFile, to_yaml(meta));
  for (const auto& [key, value] : initial_tags(tags, meta.run_name, meta.user_id))
    write_file_atomic(built / "tags" / key, value);
  const fs::path run_dir = *experiment_dir / meta.run_id;
  staging.publish_directory(built, run_dir);
  return std::unique_ptr<MlflowRun>(new MlflowRun(run_dir, experiment_id, meta.run_id, staging_));
}

std::unique_ptr<MlflowRun> MlflowStore::open_run(const std::string& run_id) const {
  validate_run_id(run_id);
  std::vector<fs::path> parents;
  for (const fs::path& parent : {mlruns_, mlruns_ / kTrashDir})
    for (const std::string& name : subdirectories(parent))
      if (!name.starts_with(".") && name != kModelsDir) parents.push_back(parent / name);
  for (const fs::path& experiment_dir : parents) {
    const fs::path run_dir = experiment_dir / run_id;
    if (!path_exists(run_dir / kMetaFile)) continue;
    check_contained(mlruns_, run_dir);
    const RunMeta meta = read_run_meta(run_dir);
    if (meta.run_id != run_id || meta.experiment_id != experiment_dir.filename().string())
      throw DataError(fmt::format("{}: names run {} of experiment {}, but lies elsewhere",
                                  (run_dir / kMetaFile).string(), meta.run_id, meta.experiment_id));
    return std::unique_ptr<MlflowRun>(new MlflowRun(run_dir, meta.experiment_id, run_id, staging_));
  }
  throw ConfigError(
      fmt::format("registry: run id '{}': no such run in {}", run_id, mlruns_.string()));
}

std::vector<RunInfo> MlflowStore::list_runs(const std::string& experiment_id) const {
  const auto experiment_dir = experiment_directory(experiment_id);
  if (!experiment_dir)
    throw ConfigError(fmt::format("registry: experiment id '{}': no such experiment in {}",
                                  experiment_id, mlruns_.string()));
  std::vector<RunInfo> runs;
  for (const std::string& name : subdirectories(*experiment_dir)) {
    if (is_reserved_experiment_folder(name)) continue;
    const fs::path run_dir = *experiment_dir / name;
    if (!path_exists(run_dir / kMetaFile)) continue;
    try {
      check_contained(mlruns_, run_dir);
      const RunMeta meta = read_run_meta(run_dir);
      if (meta.experiment_id != experiment_id || meta.run_id != name) continue;
      if (meta.lifecycle_stage != "active") continue;
      runs.push_back(to_run_info(meta, run_dir));
    } catch (const DataError& error) {
      log::warn("registry: skipping run: {}", error.what());
    }
  }
  std::sort(runs.begin(), runs.end(), [](const RunInfo& a, const RunInfo& b) {
    return std::tie(a.start_time_ms, a.run_id) < std::tie(b.start_time_ms, b.run_id);
  });
  return runs;
}

}  // namespace kiln::registry
