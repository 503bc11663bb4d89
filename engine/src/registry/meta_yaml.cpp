#include "registry/meta_yaml.h"

#include "core/yaml_limits.h"

#include <kiln/error.h>
#include <kiln/registry/names.h>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <variant>

namespace kiln::registry::detail {
namespace {

struct EmptyList {};
using Value = std::variant<std::nullptr_t, std::int64_t, std::string, EmptyList>;
// std::map: keys come out sorted, as MLflow's yaml.dump(sort_keys=True) writes them.
using Document = std::map<std::string, Value>;

Value text_or_null(const std::string& text) {
  if (text.empty()) return nullptr;
  return text;
}

std::string emit(const Document& document) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& [key, value] : document) {
    out << YAML::Key << key << YAML::Value;
    if (std::holds_alternative<std::nullptr_t>(value))
      out << YAML::Null;
    else if (const auto* number = std::get_if<std::int64_t>(&value))
      out << *number;
    else if (const auto* text = std::get_if<std::string>(&value))
      out << YAML::DoubleQuoted << *text;
    else
      out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
  }
  out << YAML::EndMap;
  if (!out.good()) throw InternalError(std::string("meta.yaml emitter: ") + out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

YAML::Node load_map(const std::string& text, const std::filesystem::path& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& error) {
    throw DataError(file.string() + ": malformed YAML: " + error.what());
  }
  if (const auto breach = check_yaml_limits(root))
    throw DataError(fmt::format("{}:{}:{}: {}", file.string(), breach->mark.line + 1,
                                breach->mark.column + 1, breach->what));
  if (!root.IsMap()) throw DataError(file.string() + ": not a YAML mapping");
  return root;
}

YAML::Node field(const YAML::Node& root, const char* key, const std::filesystem::path& file) {
  const YAML::Node node = root[key];
  if (!node.IsDefined() || !(node.IsScalar() || node.IsNull()))
    throw DataError(file.string() + ": missing field '" + key + "'");
  return node;
}

std::string text_field(const YAML::Node& root, const char* key, const std::filesystem::path& file) {
  const YAML::Node node = field(root, key, file);
  return node.IsNull() ? std::string() : node.as<std::string>();
}

std::string optional_text(const YAML::Node& root, const char* key) {
  const YAML::Node node = root[key];
  return node.IsDefined() && node.IsScalar() ? node.as<std::string>() : std::string();
}

// Missing or null -> nothing; anything but an integer -> DataError.
std::optional<std::int64_t> number_field(const YAML::Node& root, const char* key,
                                         const std::filesystem::path& file) {
  const YAML::Node node = root[key];
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  try {
    return node.as<std::int64_t>();
  } catch (const YAML::Exception&) {
    throw DataError(file.string() + ": field '" + key + "' is not an integer");
  }
}

std::int64_t required_number(const YAML::Node& root, const char* key,
                             const std::filesystem::path& file) {
  const auto number = number_field(root, key, file);
  if (!number) throw DataError(file.string() + ": missing field '" + key + "'");
  return *number;
}

// A model name read back becomes a directory and an output file name (kiln
// registry export-onnx writes <name>-v<N>.onnx), so it passes the same check as a
// name given on the command line.
std::string model_name_field(const YAML::Node& root, const std::filesystem::path& file) {
  std::string name = text_field(root, "name", file);
  try {
    validate_model_name(name);
  } catch (const ConfigError& error) {
    throw DataError(fmt::format("{}: {}", file.string(), error.what()));
  }
  return name;
}

}  // namespace

std::string to_yaml(const ExperimentMeta& meta) {
  return emit({{"artifact_location", meta.artifact_location},
               {"creation_time", meta.creation_time},
               {"effective_trace_archival_retention", nullptr},
               {"experiment_id", meta.experiment_id},
               {"last_update_time", meta.last_update_time},
               {"lifecycle_stage", meta.lifecycle_stage},
               {"name", meta.name},
               {"trace_location", nullptr},
               {"workspace", std::string("default")}});
}

std::string to_yaml(const RunMeta& meta) {
  // source_* and an empty tags list are what _make_persisted_run_info_dict writes
  // for older MLflow readers; source_type 4 is SourceType.LOCAL.
  return emit({{"artifact_uri", meta.artifact_uri},
               {"end_time", meta.end_time ? Value(*meta.end_time) : Value(nullptr)},
               {"entry_point_name", std::string()},
               {"experiment_id", meta.experiment_id},
               {"lifecycle_stage", meta.lifecycle_stage},
               {"run_id", meta.run_id},
               {"run_name", meta.run_name},
               {"source_name", std::string()},
               {"source_type", std::int64_t{4}},
               {"source_version", std::string()},
               {"start_time", meta.start_time},
               {"status", std::int64_t{meta.status}},
               {"tags", EmptyList{}},
               {"user_id", meta.user_id}});
}

std::string to_yaml(const ModelMeta& meta) {
  return emit({{"creation_timestamp", meta.creation_timestamp},
               {"deployment_job_id", nullptr},
               {"deployment_job_state", nullptr},
               {"description", text_or_null(meta.description)},
               {"last_updated_timestamp", meta.last_updated_timestamp},
               {"name", meta.name},
               {"workspace", std::string("default")}});
}

std::string to_yaml(const VersionMeta& meta) {
  // No model_id: with one, MLflow's reader asks the tracking store for a logged model
  // (MLflow 3), which kiln does not write.
  return emit({{"creation_timestamp", meta.creation_timestamp},
               {"current_stage", meta.current_stage},
               {"deployment_job_state", nullptr},
               {"description", text_or_null(meta.description)},
               {"last_updated_timestamp", meta.last_updated_timestamp},
               {"name", meta.name},
               {"run_id", text_or_null(meta.run_id)},
               {"run_link", nullptr},
               {"source", meta.source},
               {"status", meta.status},
               {"status_message", nullptr},
               {"storage_location", meta.storage_location},
               {"user_id", nullptr},
               {"version", meta.version},
               {"workspace", std::string("default")}});
}

ExperimentMeta parse_experiment_meta(const std::string& text, const std::filesystem::path& file) {
  const YAML::Node root = load_map(text, file);
  ExperimentMeta meta;
  meta.experiment_id = text_field(root, "experiment_id", file);
  meta.name = text_field(root, "name", file);
  meta.artifact_location = optional_text(root, "artifact_location");
  const std::string stage = optional_text(root, "lifecycle_stage");
  meta.lifecycle_stage = stage.empty() ? "active" : stage;
  meta.creation_time = number_field(root, "creation_time", file).value_or(0);
  meta.last_update_time = number_field(root, "last_update_time", file).value_or(0);
  return meta;
}

RunMeta parse_run_meta(const std::string& text, const std::filesystem::path& file) {
  const YAML::Node root = load_map(text, file);
  RunMeta meta;
  meta.run_id = text_field(root, "run_id", file);
  meta.experiment_id = text_field(root, "experiment_id", file);
  meta.run_name = optional_text(root, "run_name");
  meta.user_id = optional_text(root, "user_id");
  meta.artifact_uri = optional_text(root, "artifact_uri");
  const std::string stage = optional_text(root, "lifecycle_stage");
  meta.lifecycle_stage = stage.empty() ? "active" : stage;
  // MLflow treats a missing status as RUNNING (_read_persisted_run_info_dict).
  meta.status = static_cast<int>(number_field(root, "status", file).value_or(1));
  meta.start_time = number_field(root, "start_time", file).value_or(0);
  meta.end_time = number_field(root, "end_time", file);
  return meta;
}

ModelMeta parse_model_meta(const std::string& text, const std::filesystem::path& file) {
  const YAML::Node root = load_map(text, file);
  ModelMeta meta;
  meta.name = model_name_field(root, file);
  meta.description = optional_text(root, "description");
  meta.creation_timestamp = required_number(root, "creation_timestamp", file);
  meta.last_updated_timestamp =
      number_field(root, "last_updated_timestamp", file).value_or(meta.creation_timestamp);
  return meta;
}

VersionMeta parse_version_meta(const std::string& text, const std::filesystem::path& file) {
  const YAML::Node root = load_map(text, file);
  VersionMeta meta;
  meta.name = model_name_field(root, file);
  meta.version = required_number(root, "version", file);
  meta.source = optional_text(root, "source");
  meta.storage_location = optional_text(root, "storage_location");
  meta.run_id = optional_text(root, "run_id");
  meta.description = optional_text(root, "description");
  meta.current_stage = optional_text(root, "current_stage");
  meta.status = optional_text(root, "status");
  meta.creation_timestamp = required_number(root, "creation_timestamp", file);
  meta.last_updated_timestamp =
      number_field(root, "last_updated_timestamp", file).value_or(meta.creation_timestamp);
  return meta;
}

}  // namespace kiln::registry::detail
