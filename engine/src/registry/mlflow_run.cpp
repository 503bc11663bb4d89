#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/names.h>
#include <kiln/registry/registry_root.h>

#include "registry/run_files.h"
#include "registry/store_files.h"

#include <fmt/format.h>

namespace kiln::registry {
namespace fs = std::filesystem;
using namespace detail;

const char* to_string(RunStatus status) noexcept {
  switch (status) {
    case RunStatus::Running:
      return "RUNNING";
    case RunStatus::Scheduled:
      return "SCHEDULED";
    case RunStatus::Finished:
      return "FINISHED";
    case RunStatus::Failed:
      return "FAILED";
    case RunStatus::Killed:
      return "KILLED";
  }
  return "UNKNOWN";
}

namespace detail {

RunMeta read_run_meta(const fs::path& run_dir) {
  const fs::path file = run_dir / kMetaFile;
  return parse_run_meta(read_within(run_dir, file), file);
}

RunInfo to_run_info(const RunMeta& meta, const fs::path& run_dir) {
  RunInfo info;
  info.run_id = meta.run_id;
  info.run_name = meta.run_name;
  info.experiment_id = meta.experiment_id;
  info.user = meta.user_id;
  if (meta.status < 1 || meta.status > 5)
    throw DataError(
        fmt::format("{}: unknown run status {}", (run_dir / kMetaFile).string(), meta.status));
  info.status = static_cast<RunStatus>(meta.status);
  info.start_time_ms = meta.start_time;
  info.end_time_ms = meta.end_time;
  info.parent_run_id = read_if_exists(run_dir, run_dir / "tags" / kParentRunTag).value_or("");
  return info;
}

}  // namespace detail

namespace {

// Where a run writes: the file must resolve inside the run's directory, so that a
// linked metrics/, params/ or tags/ folder (or file) that someone left in the
// registry cannot make kiln write elsewhere.
fs::path writable_in(const fs::path& run_dir, const fs::path& file) {
  check_contained(run_dir, file);
  return file;
}

}  // namespace

MlflowRun::MlflowRun(fs::path directory, std::string experiment_id, std::string run_id,
                     fs::path staging)
    : directory_(std::move(directory)),
      experiment_id_(std::move(experiment_id)),
      run_id_(std::move(run_id)),
      staging_(std::move(staging)) {}

MlflowRun::~MlflowRun() = default;

void MlflowRun::log_metric(std::string_view key, double value, std::int64_t step) {
  validate_key("metric key", key);
  append_line(writable_in(directory_, directory_ / "metrics" / key),
              fmt::format("{} {} {}", now_ms(), format_metric_value(value), step));
}

void MlflowRun::log_param(std::string_view key, std::string_view value) {
  validate_key("param key", key);
  validate_value("param", key, value, kMaxParamValueLength);
  const fs::path file = writable_in(directory_, directory_ / "params" / key);
  // Check and write under the run's lock, so that two processes logging different
  // values for one key cannot both succeed.
  FileLock lock(directory_ / kRunLock);
  if (const auto existing = read_if_exists(directory_, file)) {
    if (*existing == value) return;
    throw ConfigError(fmt::format(
        "registry: param '{}' of run {} is already '{}'; params cannot change (new value '{}')",
        key, run_id_, *existing, value));
  }
  Staging(staging_).publish_file(file, value);
}

void MlflowRun::set_tag(std::string_view key, std::string_view value) {
  validate_key("tag key", key);
  validate_value("tag", key, value, kMaxTagValueLength);
  if (key == kRunNameTag) {
    rename_run(value);
    return;
  }
  Staging(staging_).publish_file(writable_in(directory_, directory_ / "tags" / key), value);
}

// MLflow keeps the run name twice, in meta.yaml and in the mlflow.runName tag, and
// shows the first; set_tag("mlflow.runName") updates both, as MLflow's set_tag does.
void MlflowRun::rename_run(std::string_view run_name) {
  FileLock lock(directory_ / kRunLock);
  const Staging staging(staging_);
  staging.publish_file(writable_in(directory_, directory_ / "tags" / kRunNameTag), run_name);
  RunMeta meta = read_run_meta(directory_);
  meta.run_name = std::string(run_name);
  staging.publish_file(directory_ / kMetaFile, to_yaml(meta));
}

fs::path MlflowRun::artifact_dir() {
  const fs::path dir = writable_in(directory_, directory_ / "artifacts");
  make_directories(dir);
  return dir;
}

void MlflowRun::end(RunStatus status) {
  if (status != RunStatus::Finished && status != RunStatus::Failed && status != RunStatus::Killed)
    throw ConfigError(
        fmt::format("registry: run {} cannot end as {}; use FINISHED, FAILED or KILLED", run_id_,
                    to_string(status)));
  FileLock lock(directory_ / kRunLock);
  RunMeta meta = read_run_meta(directory_);
  meta.status = static_cast<int>(status);
  meta.end_time = now_ms();
  Staging(staging_).publish_file(directory_ / kMetaFile, to_yaml(meta));
}

void MlflowRun::reopen() {
  FileLock lock(directory_ / kRunLock);
  RunMeta meta = read_run_meta(directory_);
  meta.status = static_cast<int>(RunStatus::Running);
  meta.end_time.reset();
  Staging(staging_).publish_file(directory_ / kMetaFile, to_yaml(meta));
}

RunInfo MlflowRun::info() const { return to_run_info(read_run_meta(directory_), directory_); }

}  // namespace kiln::registry
