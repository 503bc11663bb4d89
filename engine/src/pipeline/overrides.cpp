// Command-line overrides in dotted form, applied to the document before it is
// checked: "<stage>.with.<param>[.<key>...]=<YAML value>", "name=..." and
// "description=...". Each records its own origin so errors point at it.
#include "yaml_document.h"

#include "core/yaml_limits.h"

#include <kiln/error.h>

#include <fmt/format.h>

namespace kiln {
namespace {

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

YAML::Node parse_value(const std::string& text, const std::string& value) {
  if (value.empty()) throw ConfigError(fmt::format("override '{}': no value after '='", text));
  YAML::Node node;
  try {
    node = YAML::Load(value);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("override '{}': invalid value: {}", text, e.msg));
  }
  if (const auto breach = check_yaml_limits(node))
    throw ConfigError(fmt::format("override '{}': the value {}", text, breach->what));
  return node;
}

std::vector<std::string> stage_names(const YAML::Node& stages) {
  std::vector<std::string> names;
  if (stages.IsMap())
    for (const auto& entry : stages) names.push_back(entry.first.Scalar());
  return names;
}

}  // namespace

void apply_override(PipelineYaml& doc, const std::string& text) {
  const std::size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0)
    throw ConfigError(
        fmt::format("override '{}': expected <stage>.with.<param>=<value>, name=<value> or "
                    "description=<value>",
                    text));
  const std::string path = text.substr(0, equals);
  const YAML::Node value = parse_value(text, text.substr(equals + 1));
  const std::vector<std::string> parts = split(path, '.');
  for (const auto& part : parts)
    if (part.empty())
      throw ConfigError(fmt::format("override '{}': empty name in '{}'", text, path));

  if (parts.size() == 1 && (parts[0] == "name" || parts[0] == "description")) {
    if (!value.IsScalar())
      throw ConfigError(fmt::format("override '{}': {} must be a single value", text, parts[0]));
    doc.root[parts[0]] = value;
    return;
  }
  if (parts.size() < 3 || parts[1] != "with")
    throw ConfigError(fmt::format(
        "override '{}': only <stage>.with.<param>, name and description can be overridden", text));

  YAML::Node stages = doc.root["stages"];
  const std::string& stage = parts[0];
  if (!stages.IsMap() || !stages[stage])
    throw ConfigError(fmt::format("override '{}': no stage '{}' in {}{}", text, stage,
                                  doc.display_path, did_you_mean(stage, stage_names(stages))));
  YAML::Node body = stages[stage];
  if (!body.IsMap())
    throw ConfigError(fmt::format("override '{}': stage '{}' is not a mapping", text, stage));
  if (!body["with"] || body["with"].IsNull()) body["with"] = YAML::Node(YAML::NodeType::Map);

  // Walk down to the parent of the last key, creating mappings on the way.
  YAML::Node node = body["with"];
  for (std::size_t i = 2; i + 1 < parts.size(); ++i) {
    if (!node[parts[i]] || !node[parts[i]].IsMap()) {
      if (node[parts[i]] && !node[parts[i]].IsNull())
        throw ConfigError(fmt::format("override '{}': '{}' is not a mapping in {}", text, parts[i],
                                      doc.display_path));
      node[parts[i]] = YAML::Node(YAML::NodeType::Map);
    }
    node.reset(node[parts[i]]);
  }
  node[parts.back()] = value;
  doc.override_origins[fmt::format("stages.{}.with.{}", stage, parts[2])] =
      fmt::format("override '{}'", text);
}

}  // namespace kiln
