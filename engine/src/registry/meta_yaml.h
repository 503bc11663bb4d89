// The meta.yaml documents of MLflow's file store, with the fields MLflow 3.17 writes
// (mlflow/store/tracking/file_store.py: _create_experiment_with_id,
// _make_persisted_run_info_dict; mlflow/store/model_registry/file_store.py:
// _save_registered_model_as_meta_file, _save_model_version_as_meta_file).
// Strings are emitted double-quoted so that "0" stays a string and "None" is not
// taken for anything else; parsers accept what MLflow itself writes as well.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace kiln::registry::detail {

struct ExperimentMeta {
  std::string experiment_id;
  std::string name;
  std::string artifact_location;  // file:// URI of the experiment directory
  std::string lifecycle_stage = "active";
  std::int64_t creation_time = 0;  // ms since the epoch, like every time here
  std::int64_t last_update_time = 0;
};

struct RunMeta {
  std::string run_id;
  std::string run_name;
  std::string experiment_id;
  std::string user_id;
  std::string artifact_uri;  // file:// URI of <run>/artifacts
  std::string lifecycle_stage = "active";
  int status = 1;  // RunStatus number
  std::int64_t start_time = 0;
  std::optional<std::int64_t> end_time;
};

struct ModelMeta {
  std::string name;
  std::string description;
  std::int64_t creation_timestamp = 0;
  std::int64_t last_updated_timestamp = 0;
};

struct VersionMeta {
  std::string name;
  std::int64_t version = 0;
  std::string source;
  std::string storage_location;  // MLflow's download URI; kiln sets it to `source`
  std::string run_id;
  std::string description;
  std::string current_stage = "None";  // "Deleted_Internal" marks a deleted version
  std::string status = "READY";
  std::int64_t creation_timestamp = 0;
  std::int64_t last_updated_timestamp = 0;
};

std::string to_yaml(const ExperimentMeta& meta);
std::string to_yaml(const RunMeta& meta);
std::string to_yaml(const ModelMeta& meta);
std::string to_yaml(const VersionMeta& meta);

// Each throws DataError naming `file` when the text is not such a document.
ExperimentMeta parse_experiment_meta(const std::string& text, const std::filesystem::path& file);
RunMeta parse_run_meta(const std::string& text, const std::filesystem::path& file);
ModelMeta parse_model_meta(const std::string& text, const std::filesystem::path& file);
VersionMeta parse_version_meta(const std::string& text, const std::filesystem::path& file);

}  // namespace kiln::registry::detail
