// resolve_pipeline: checks every stage against its type (from the plugins) and
// orders the stages.
#include "params_from_yaml.h"

#include <kiln/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace kiln {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string uses_origin(const PipelineYaml& doc, const StageDecl& stage) {
  return doc.where(doc.root["stages"][stage.name]["uses"]);
}

// Kahn's algorithm, always taking the earliest stage in file order that is ready,
// so the order is stable and reads like the file.
std::vector<std::size_t> topological_order(const std::vector<StageDecl>& stages) {
  std::vector<std::size_t> order;
  std::set<std::string> done;
  std::vector<bool> placed(stages.size(), false);
  while (order.size() < stages.size()) {
    bool progressed = false;
    for (std::size_t i = 0; i < stages.size(); ++i) {
      if (placed[i]) continue;
      const auto& needs = stages[i].needs;
      if (!std::all_of(needs.begin(), needs.end(),
                       [&](const std::string& n) { return done.count(n) > 0; }))
        continue;
      placed[i] = true;
      done.insert(stages[i].name);
      order.push_back(i);
      progressed = true;
      break;
    }
    if (!progressed) throw InternalError("pipeline has a cycle that parse_pipeline missed");
  }
  return order;
}

YAML::Node json_to_yaml(const json& value) {
  if (value.is_object()) {
    YAML::Node node(YAML::NodeType::Map);
    for (const auto& [key, item] : value.items()) node[key] = json_to_yaml(item);
    return node;
  }
  if (value.is_array()) {
    YAML::Node node(YAML::NodeType::Sequence);
    for (const auto& item : value) node.push_back(json_to_yaml(item));
    return node;
  }
  if (value.is_string()) return YAML::Node(value.get<std::string>());
  if (value.is_null()) return YAML::Node(YAML::NodeType::Null);
  return YAML::Node(value.dump());  // numbers and booleans in JSON's spelling
}

std::string emit_resolved(const Pipeline& pipeline) {
  YAML::Node root(YAML::NodeType::Map);
  root["name"] = pipeline.name;
  if (!pipeline.description.empty()) root["description"] = pipeline.description;
  YAML::Node stages(YAML::NodeType::Map);
  for (const auto& stage : pipeline.stages) {
    YAML::Node body(YAML::NodeType::Map);
    body["uses"] = stage.type->name;
    if (!stage.needs.empty()) {
      YAML::Node needs(YAML::NodeType::Sequence);
      for (const auto& need : stage.needs) needs.push_back(need);
      body["needs"] = needs;
    }
    body["with"] = json_to_yaml(stage.params.values());
    stages[stage.name] = body;
  }
  root["stages"] = stages;
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

}  // namespace

const PipelineStage* Pipeline::find(std::string_view stage_name) const {
  for (const auto& stage : stages)
    if (stage.name == stage_name) return &stage;
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> Pipeline::flat_params() const {
  std::vector<std::pair<std::string, std::string>> flat;
  for (const auto& stage : stages)
    for (const auto& [key, value] : stage.params.values().items())
      flat.emplace_back(fmt::format("{}.with.{}", stage.name, key),
                        value.is_string() ? value.get<std::string>() : value.dump());
  return flat;
}

Pipeline resolve_pipeline(const PipelineSource& source, const StageCatalog& catalog) {
  const PipelineYaml& doc = *source.yaml;
  const fs::path base = fs::absolute(source.file).parent_path();
  Pipeline pipeline;
  pipeline.file = source.file;
  pipeline.name = source.name;
  pipeline.description = source.description;
  pipeline.on_failure = source.on_failure;
  for (const std::size_t index : topological_order(source.stages)) {
    const StageDecl& decl = source.stages[index];
    const StageType& type = catalog.get(decl.uses, uses_origin(doc, decl));
    PipelineStage stage;
    stage.name = decl.name;
    stage.type = &type;
    stage.plugin = &catalog.plugin_of(type.name);
    stage.needs = decl.needs;
    stage.origin = decl.origin;
    stage.params = params_from_yaml(doc, decl, type, base);
    if (type.check) type.check(stage.params);
    pipeline.stages.push_back(std::move(stage));
  }
  pipeline.resolved_yaml = emit_resolved(pipeline);
  return pipeline;
}

}  // namespace kiln
