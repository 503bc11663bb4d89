// MlflowStore's model registry: mlruns/models/<name>/{meta.yaml, version-<N>/,
// aliases/<alias>}, as mlflow/store/model_registry/file_store.py reads it.
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/names.h>
#include <kiln/registry/registry_root.h>

#include "registry/meta_yaml.h"
#include "registry/store_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace kiln::registry {
namespace fs = std::filesystem;
using namespace detail;

namespace {

// MLflow's limits for registry tags (MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH) and the
// free text fields, which it does not bound in the file store.
constexpr std::size_t kMaxRegistryTagValueLength = 100'000;
constexpr std::size_t kMaxRegistryTextLength = 100'000;
// MLflow marks a deleted version with this stage and keeps its directory.
constexpr std::string_view kDeletedStage = "Deleted_Internal";

std::optional<std::int64_t> parse_number(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::int64_t number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return number;
}

// N of a "version-N" directory name.
std::optional<std::int64_t> version_of(std::string_view dir_name) {
  constexpr std::string_view prefix = "version-";
  if (!dir_name.starts_with(prefix)) return std::nullopt;
  return parse_number(dir_name.substr(prefix.size()));
}

// Every version-N directory counts, deleted or half-written ones too, so that a
// number is never given out twice (MLflow's next_version counts deleted ones too).
std::int64_t highest_version(const fs::path& model_dir) {
  std::int64_t highest = 0;
  for (const std::string& name : subdirectories(model_dir))
    if (const auto version = version_of(name)) highest = std::max(highest, *version);
  return highest;
}

void validate_version_inputs(const std::string& run_id, const std::string& source_uri,
                             const std::string& description,
                             const std::map<std::string, std::string>& tags) {
  if (!run_id.empty()) validate_run_id(run_id);
  if (source_uri.empty())
    throw ConfigError(
        "registry: model version source: must not be empty (a file:// or runs:/ URI)");
  validate_value("model version", "source", source_uri, kMaxRegistryTextLength);
  validate_value("model version", "description", description, kMaxRegistryTextLength);
  for (const auto& [key, value] : tags) {
    validate_key("model version tag key", key);
    validate_value("model version tag", key, value, kMaxRegistryTagValueLength);
  }
}

}  // namespace

fs::path MlflowStore::model_directory(const std::string& model) const {
  validate_model_name(model);
  const fs::path dir = mlruns_ / kModelsDir / model;
  std::error_code ec;
  if (fs::symlink_status(dir, ec).type() != fs::file_type::not_found) check_contained(mlruns_, dir);
  return dir;
}

// Called under the models lock. The model's directory appears with its meta.yaml in
// it: MLflow lists every directory in models/ and fails on one without.
void MlflowStore::ensure_model(const std::string& model) {
  const fs::path dir = model_directory(model);
  if (path_exists(dir / kMetaFile)) return;
  ModelMeta meta;
  meta.name = model;
  meta.creation_timestamp = meta.last_updated_timestamp = now_ms();
  const Staging staging(staging_);
  if (path_exists(dir)) {  // left without meta.yaml by another tool: complete it
    staging.publish_file(dir / kMetaFile, to_yaml(meta));
    return;
  }
  const fs::path built = staging.new_directory("model-");
  write_file_atomic(built / kMetaFile, to_yaml(meta));
  staging.publish_directory(built, dir);
}

// Called under the models lock: MLflow bumps last_updated_timestamp on every change.
void MlflowStore::touch_model(const std::string& model, std::int64_t now) {
  const fs::path file = model_directory(model) / kMetaFile;
  ModelMeta meta = parse_model_meta(read_within(file.parent_path(), file), file);
  meta.last_updated_timestamp = now;
  Staging(staging_).publish_file(file, to_yaml(meta));
}

std::int64_t MlflowStore::create_model_version(const std::string& model, const std::string& run_id,
                                               const std::string& source_uri,
                                               const std::string& description,
                                               const std::map<std::string, std::string>& tags) {
  const fs::path dir = model_directory(model);
  validate_version_inputs(run_id, source_uri, description, tags);
  ensure_layout();
  const Staging staging(staging_);
  FileLock lock(mlruns_ / kModelsLock);
  ensure_model(model);

  VersionMeta meta;
  meta.name = model;
  meta.version = highest_version(dir) + 1;
  meta.source = source_uri;
  meta.storage_location = source_uri;
  meta.run_id = run_id;
  meta.description = description;
  meta.creation_timestamp = meta.last_updated_timestamp = now_ms();

  const fs::path built = staging.new_directory("version-");
  write_file_atomic(built / kMetaFile, to_yaml(meta));
  for (const auto& [key, value] : tags) write_file_atomic(built / "tags" / key, value);
  staging.publish_directory(built, dir / fmt::format("version-{}", meta.version));
  touch_model(model, meta.creation_timestamp);
  return meta.version;
}

void MlflowStore::require_model(const std::string& model) const {
  if (!path_exists(model_directory(model) / kMetaFile))
    throw ConfigError(fmt::format("registry: model name '{}': no such model in {}", model,
                                  (mlruns_ / kModelsDir).string()));
}

void MlflowStore::require_version(const std::string& model, std::int64_t version) const {
  if (!read_version(model_directory(model) / fmt::format("version-{}", version)))
    throw ConfigError(fmt::format("registry: model '{}' has no version {}", model, version));
}

void MlflowStore::set_alias(const std::string& model, const std::string& alias,
                            std::int64_t version) {
  validate_alias(alias);
  require_model(model);
  FileLock lock(mlruns_ / kModelsLock);
  require_version(model, version);
  publish_alias(model, {.time_ms = now_ms(),
                        .alias = alias,
                        .action = "set",
                        .version = version,
                        .previous = alias_version(model, alias),
                        .user = current_user()});
}

std::optional<std::int64_t> MlflowStore::alias_version(const std::string& model,
                                                       const std::string& alias) const {
  const fs::path dir = model_directory(model);
  validate_alias(alias);
  const fs::path file = dir / "aliases" / alias;
  const auto text = read_if_exists(dir, file);
  if (!text) return std::nullopt;
  const auto version = parse_number(*text);
  if (!version) throw DataError(file.string() + ": not a version number: '" + *text + "'");
  return version;
}

// A version as MLflow's get_model_version shows it; nothing for a directory without
// meta.yaml or a deleted version.
std::optional<ModelVersionInfo> MlflowStore::read_version(const fs::path& directory) const {
  // `directory` is models/<name>/version-<N>; the model's directory is the one
  // model_directory() checked, so every read stays inside it.
  const fs::path model_dir = directory.parent_path();
  const fs::path file = directory / kMetaFile;
  const auto text = read_if_exists(model_dir, file);
  if (!text) return std::nullopt;
  const VersionMeta meta = parse_version_meta(*text, file);
  if (meta.current_stage == kDeletedStage) return std::nullopt;
  ModelVersionInfo info;
  info.model = meta.name;
  info.version = meta.version;
  info.run_id = meta.run_id;
  info.source = meta.source;
  info.description = meta.description;
  info.creation_time_ms = meta.creation_timestamp;
  info.last_updated_time_ms = meta.last_updated_timestamp;
  for (const std::string& key : files_below(directory / "tags"))
    info.tags[key] = read_within(model_dir, directory / "tags" / key);
  return info;
}

std::vector<ModelVersionInfo> MlflowStore::list_versions(const std::string& model) const {
  const fs::path dir = model_directory(model);
  require_model(model);
  std::vector<ModelVersionInfo> versions;
  for (const std::string& name : subdirectories(dir)) {
    if (!version_of(name)) continue;
    try {
      if (auto info = read_version(dir / name)) versions.push_back(std::move(*info));
    } catch (const DataError& error) {
      log::warn("registry: skipping model version: {}", error.what());
    }
  }
  std::sort(versions.begin(), versions.end(),
            [](const auto& a, const auto& b) { return a.version < b.version; });
  for (const std::string& alias : files_below(dir / "aliases")) {
    const auto version = parse_number(read_within(dir, dir / "aliases" / alias));
    for (ModelVersionInfo& info : versions)
      if (version && info.version == *version) info.aliases.push_back(alias);
  }
  return versions;
}

ModelVersionInfo MlflowStore::get_version(const std::string& model, std::int64_t version) const {
  for (ModelVersionInfo& info : list_versions(model))
    if (info.version == version) return std::move(info);
  throw ConfigError(fmt::format("registry: model '{}' has no version {}", model, version));
}

std::vector<std::string> MlflowStore::list_models() const {
  std::vector<std::string> models;
  for (const std::string& name : subdirectories(mlruns_ / kModelsDir))
    if (path_exists(mlruns_ / kModelsDir / name / kMetaFile)) models.push_back(name);
  return models;
}

}  // namespace kiln::registry
