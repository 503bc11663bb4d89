// Converts a stage's `with:` mapping into validated Params, driven by the stage
// type's schema.
#include "params_from_yaml.h"

#include <kiln/error.h>

#include <fmt/format.h>

#include <charconv>
#include <set>

namespace kiln {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Context {
  const PipelineYaml& doc;
  const std::string& stage;
  const ParamSpec& spec;
  const std::string& origin;
  const fs::path& base;

  [[noreturn]] void fail(const std::string& problem) const {
    throw ConfigError(fmt::format("{}: {}.with.{}: {}", origin, stage, spec.name, problem));
  }
};

std::string describe(const YAML::Node& node) {
  if (node.IsScalar()) return fmt::format("'{}'", node.Scalar());
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

bool is_quoted(const YAML::Node& node) { return node.Tag() == "!"; }

json scalar(const Context& c, const YAML::Node& node, ParamType type) {
  if (!node.IsScalar()) c.fail(fmt::format("expected {}, got {}", to_string(type), describe(node)));
  try {
    switch (type) {
      case ParamType::Bool:
        return node.as<bool>();
      case ParamType::Int:
        return node.as<std::int64_t>();
      case ParamType::Float:
        return node.as<double>();
      default:
        return node.Scalar();
    }
  } catch (const YAML::BadConversion&) {
    c.fail(fmt::format("expected {}, got {}", to_string(type), describe(node)));
  }
}

json list(const Context& c, const YAML::Node& node, ParamType element) {
  if (!node.IsSequence())
    c.fail(fmt::format("expected {}, got {}", to_string(c.spec.type), describe(node)));
  json values = json::array();
  for (const auto& item : node) values.push_back(scalar(c, item, element));
  return values;
}

json path(const Context& c, const YAML::Node& node) {
  const fs::path given = scalar(c, node, ParamType::Path).get<std::string>();
  const fs::path resolved = given.is_absolute() ? given : (c.base / given).lexically_normal();
  std::error_code ec;
  if (!fs::exists(resolved, ec)) c.fail(fmt::format("file not found: {}", resolved.string()));
  if (!fs::is_regular_file(resolved, ec)) c.fail(fmt::format("not a file: {}", resolved.string()));
  return resolved.string();
}

json string_choice(const Context& c, const YAML::Node& node) {
  json value = scalar(c, node, ParamType::String);
  const auto& choices = c.spec.choices;
  if (choices.empty()) return value;
  const std::string text = value.get<std::string>();
  for (const auto& choice : choices)
    if (choice == text) return value;
  c.fail(fmt::format("'{}' is not one of {}{}", text, join(choices), did_you_mean(text, choices)));
}

}  // namespace

json yaml_to_json(const PipelineYaml& doc, const YAML::Node& node) {
  if (!node || node.IsNull()) return nullptr;
  if (node.IsSequence()) {
    json values = json::array();
    for (const auto& item : node) values.push_back(yaml_to_json(doc, item));
    return values;
  }
  if (node.IsMap()) {
    json object = json::object();
    for (const auto& entry : mapping_entries(doc, node, "mapping"))
      object[entry.key] = yaml_to_json(doc, entry.value);
    return object;
  }
  // Plain scalars follow YAML 1.2's core schema; quoted ones stay strings.
  const std::string& text = node.Scalar();
  if (is_quoted(node)) return text;
  if (text == "true" || text == "True") return true;
  if (text == "false" || text == "False") return false;
  std::int64_t integer = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), integer);
  if (error == std::errc() && end == text.data() + text.size()) return integer;
  try {
    return node.as<double>();
  } catch (const YAML::BadConversion&) {
    return text;
  }
}

json param_from_yaml(const PipelineYaml& doc, const std::string& stage, const ParamSpec& spec,
                     const YAML::Node& node, const std::string& origin, const fs::path& base) {
  const Context c{doc, stage, spec, origin, base};
  if (!node || node.IsNull()) c.fail("has no value");
  switch (spec.type) {
    case ParamType::Bool:
    case ParamType::Int:
    case ParamType::Float:
      return scalar(c, node, spec.type);
    case ParamType::String:
      return string_choice(c, node);
    case ParamType::Path:
      return path(c, node);
    case ParamType::IntList:
      return list(c, node, ParamType::Int);
    case ParamType::FloatList:
      return list(c, node, ParamType::Float);
    case ParamType::StringList:
      return list(c, node, ParamType::String);
    case ParamType::Object:
      return yaml_to_json(doc, node);
  }
  c.fail("has an unknown parameter type");
}

Params params_from_yaml(const PipelineYaml& doc, const StageDecl& stage, const StageType& type,
                        const fs::path& base) {
  const YAML::Node with = doc.root["stages"][stage.name]["with"];
  json values = json::object();
  std::map<std::string, std::string> origins;
  std::vector<std::string> known;
  for (const auto& spec : type.params.specs()) known.push_back(spec.name);

  if (with && with.IsMap()) {
    const std::string context = fmt::format("stage '{}' ({})", stage.name, type.name);
    for (const auto& entry : mapping_entries(doc, with, context)) {
      const ParamSpec* spec = type.params.find(entry.key);
      const auto override_origin =
          doc.override_origins.find(fmt::format("stages.{}.with.{}", stage.name, entry.key));
      const std::string origin = override_origin != doc.override_origins.end()
                                     ? override_origin->second
                                     : doc.where(entry.key_node);
      if (spec == nullptr)
        throw ConfigError(fmt::format("{}: {}: unknown parameter '{}'{}; parameters of {}: {}",
                                      origin, context, entry.key, did_you_mean(entry.key, known),
                                      type.name, known.empty() ? "none" : join(known)));
      values[entry.key] = param_from_yaml(doc, stage.name, *spec, entry.value, origin, base);
      origins[entry.key] = origin;
    }
  }
  for (const auto& spec : type.params.specs()) {
    if (values.contains(spec.name)) continue;
    if (!spec.default_value)
      throw ConfigError(fmt::format("{}: stage '{}' ({}): missing required parameter '{}' ({}: {})",
                                    stage.origin, stage.name, type.name, spec.name,
                                    to_string(spec.type), spec.doc));
    values[spec.name] = *spec.default_value;
  }
  return Params(stage.name, std::move(values), std::move(origins));
}

}  // namespace kiln
