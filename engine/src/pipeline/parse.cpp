// parse_pipeline: everything that can be checked without the plugins.
#include "yaml_document.h"

#include <kiln/error.h>
#include <kiln/fs.h>

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <regex>
#include <string_view>

#include "core/utf8.h"

namespace kiln {
namespace fs = std::filesystem;

void apply_override(PipelineYaml& doc, const std::string& text);  // overrides.cpp
FailureCommand parse_on_failure(const PipelineYaml& doc);         // on_failure.cpp

namespace {

// `sweep:` is read by kiln::sweep::parse_sweep (kiln/sweep/spec.h); `kiln run` ignores it.
const std::vector<std::string> kTopKeys = {
    "name", "description", "plugins", "stages", "sweep", "on_failure", "on_failure_timeout_s"};
const std::vector<std::string> kStageKeys = {"uses", "needs", "with"};

std::shared_ptr<PipelineYaml> load_document(const fs::path& file) {
  auto doc = std::make_shared<PipelineYaml>();
  doc->display_path = file.string();
  std::string text;
  try {
    text = read_file(file);
  } catch (const DataError&) {
    throw ConfigError(
        fmt::format("{}: cannot read pipeline file: {}", file.string(),
                    fs::exists(file) ? "permission denied or not a file" : "no such file"));
  }
  // YAML is UTF-8 text, and everything read from it ends up in JSON (parameters,
  // model specs), whose strings must be UTF-8; yaml-cpp does not check.
  if (const std::size_t bad = first_invalid_utf8(text); bad != std::string::npos) {
    const std::string_view before = std::string_view(text).substr(0, bad);
    const std::size_t line_start = before.rfind('\n') + 1;  // npos + 1 == 0
    throw ConfigError(fmt::format("{}:{}:{}: not valid UTF-8 (byte 0x{:02x})", doc->display_path,
                                  1 + std::count(before.begin(), before.end(), '\n'),
                                  bad - line_start + 1, static_cast<unsigned char>(text[bad])));
  }
  try {
    doc->root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}:{}:{}: invalid YAML: {}", doc->display_path, e.mark.line + 1,
                                  e.mark.column + 1, e.msg));
  }
  check_limits(*doc, doc->root, "the pipeline");
  if (!doc->root.IsMap())
    throw ConfigError(fmt::format("{}: a pipeline file must be a mapping with a `stages:` key",
                                  doc->display_path));
  return doc;
}

std::string scalar_value(const PipelineYaml& doc, const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar())
    throw ConfigError(fmt::format("{}: {} must be a single value", doc.where(node), what));
  return node.Scalar();
}

std::vector<std::string> parse_needs(const PipelineYaml& doc, const YAML::Node& node,
                                     const std::string& stage) {
  std::vector<std::string> needs;
  const std::string what = fmt::format("stage '{}': needs", stage);
  if (node.IsScalar()) return {node.Scalar()};
  if (!node.IsSequence())
    throw ConfigError(
        fmt::format("{}: {} must be a stage name or a list of them", doc.where(node), what));
  for (const auto& item : node) needs.push_back(scalar_value(doc, item, what + " entries"));
  return needs;
}

StageDecl parse_stage(const PipelineYaml& doc, const std::string& name, const YAML::Node& key,
                      const YAML::Node& body) {
  static const std::regex kName("[A-Za-z0-9_-]+");
  if (!std::regex_match(name, kName))
    throw ConfigError(fmt::format(
        "{}: stage name '{}' may contain only letters, digits, '_' and '-'", doc.where(key), name));
  if (!body.IsMap())
    throw ConfigError(
        fmt::format("{}: stage '{}' must be a mapping with `uses:`", doc.where(key), name));
  const std::string context = fmt::format("stage '{}'", name);
  mapping_entries(doc, body, context);
  check_keys(doc, body, context, kStageKeys);
  StageDecl decl;
  decl.name = name;
  decl.origin = doc.where(key);
  const YAML::Node uses = body["uses"];
  if (!uses)
    throw ConfigError(
        fmt::format("{}: stage '{}' has no `uses:` (its stage type)", doc.where(key), name));
  decl.uses = scalar_value(doc, uses, context + ": uses");
  if (const YAML::Node needs = body["needs"]) decl.needs = parse_needs(doc, needs, name);
  if (const YAML::Node with = body["with"]; with && !with.IsMap() && !with.IsNull())
    throw ConfigError(fmt::format("{}: stage '{}': `with:` must be a mapping of parameters",
                                  doc.where(with), name));
  return decl;
}

void check_needs(const PipelineYaml& doc, const std::vector<StageDecl>& stages) {
  std::vector<std::string> names;
  for (const auto& stage : stages) names.push_back(stage.name);
  for (const auto& stage : stages) {
    const YAML::Node needs = doc.root["stages"][stage.name]["needs"];
    for (std::size_t i = 0; i < stage.needs.size(); ++i) {
      const std::string& need = stage.needs[i];
      const YAML::Node item = needs.IsSequence() ? needs[i] : needs;
      if (need == stage.name)
        throw ConfigError(fmt::format("{}: stage '{}' needs itself", doc.where(item), stage.name));
      if (std::find(names.begin(), names.end(), need) == names.end())
        throw ConfigError(
            fmt::format("{}: stage '{}' needs '{}', which is not a stage of this "
                        "pipeline{}",
                        doc.where(item), stage.name, need, did_you_mean(need, names)));
    }
  }
}

// Depth-first search; a grey stage met again closes a cycle.
void check_cycles(const std::vector<StageDecl>& stages) {
  std::map<std::string, const StageDecl*> by_name;
  for (const auto& stage : stages) by_name[stage.name] = &stage;
  enum class Mark { White, Grey, Black };
  std::map<std::string, Mark> marks;
  std::vector<std::string> path;
  std::function<void(const StageDecl&)> visit = [&](const StageDecl& stage) {
    marks[stage.name] = Mark::Grey;
    path.push_back(stage.name);
    for (const auto& need : stage.needs) {
      if (marks[need] == Mark::Grey) {
        auto start = std::find(path.begin(), path.end(), need);
        std::vector<std::string> cycle(start, path.end());
        cycle.push_back(need);
        throw ConfigError(
            fmt::format("{}: stages form a cycle: {}", by_name[need]->origin, join(cycle, " -> ")));
      }
      if (marks[need] == Mark::White) visit(*by_name[need]);
    }
    path.pop_back();
    marks[stage.name] = Mark::Black;
  };
  for (const auto& stage : stages)
    if (marks[stage.name] == Mark::White) visit(stage);
}

std::vector<fs::path> parse_plugin_dirs(const PipelineYaml& doc, const fs::path& base) {
  std::vector<fs::path> dirs;
  const YAML::Node plugins = doc.root["plugins"];
  if (!plugins) return dirs;
  std::vector<YAML::Node> items;
  if (plugins.IsScalar())
    items.push_back(plugins);
  else if (plugins.IsSequence())
    for (const auto& item : plugins) items.push_back(item);
  else
    throw ConfigError(fmt::format("{}: plugins must be a directory or a list of directories",
                                  doc.where(plugins)));
  for (const auto& item : items) {
    fs::path dir = scalar_value(doc, item, "plugins entries");
    dirs.push_back(dir.is_absolute() ? dir : (base / dir).lexically_normal());
  }
  return dirs;
}

}  // namespace

PipelineSource parse_pipeline(const fs::path& file, const std::vector<std::string>& overrides) {
  std::shared_ptr<PipelineYaml> doc = load_document(file);
  mapping_entries(*doc, doc->root, "pipeline");
  check_keys(*doc, doc->root, "pipeline", kTopKeys);
  for (const auto& text : overrides) {
    if (const std::size_t bad = first_invalid_utf8(text); bad != std::string::npos)
      throw ConfigError(
          fmt::format("override '{}': not valid UTF-8 (byte {})", text.substr(0, bad), bad + 1));
    apply_override(*doc, text);
  }

  PipelineSource source;
  source.file = file;
  source.name = file.stem().string();
  if (const YAML::Node name = doc->root["name"]) source.name = scalar_value(*doc, name, "name");
  if (const YAML::Node description = doc->root["description"])
    source.description = scalar_value(*doc, description, "description");
  const fs::path base = fs::absolute(file).parent_path();
  source.plugin_dirs = parse_plugin_dirs(*doc, base);
  source.on_failure = parse_on_failure(*doc);

  const YAML::Node stages = doc->root["stages"];
  if (!stages || !stages.IsMap() || stages.size() == 0)
    throw ConfigError(fmt::format("{}: the pipeline has no stages: add a `stages:` mapping",
                                  stages ? doc->where(stages) : doc->display_path));
  for (const auto& entry : mapping_entries(*doc, stages, "stages"))
    source.stages.push_back(parse_stage(*doc, entry.key, entry.key_node, entry.value));
  check_needs(*doc, source.stages);
  check_cycles(source.stages);
  source.yaml = doc;
  return source;
}

}  // namespace kiln
