#include "yaml_document.h"

#include <kiln/error.h>

#include "core/yaml_limits.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace kiln {

std::string PipelineYaml::where(const YAML::Node& node) const { return where(node.Mark()); }

std::string PipelineYaml::where(const YAML::Mark& mark) const {
  if (mark.is_null()) return display_path;
  return fmt::format("{}:{}:{}", display_path, mark.line + 1, mark.column + 1);
}

void check_limits(const PipelineYaml& doc, const YAML::Node& node, std::string_view what) {
  if (const auto breach = check_yaml_limits(node))
    throw ConfigError(fmt::format("{}: {} {}", doc.where(breach->mark), what, breach->what));
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string nearest = nearest_name(word, candidates);
  return nearest.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", nearest);
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

std::vector<MappingEntry> mapping_entries(const PipelineYaml& doc, const YAML::Node& map,
                                          std::string_view what) {
  std::vector<MappingEntry> entries;
  std::set<std::string> seen;
  for (const auto& entry : map) {
    if (!entry.first.IsScalar())
      throw ConfigError(
          fmt::format("{}: {}: keys must be plain names", doc.where(entry.first), what));
    std::string key = entry.first.Scalar();
    if (!seen.insert(key).second)
      throw ConfigError(
          fmt::format("{}: {}: duplicate key '{}'", doc.where(entry.first), what, key));
    entries.push_back({std::move(key), entry.first, entry.second});
  }
  return entries;
}

void check_keys(const PipelineYaml& doc, const YAML::Node& map, std::string_view context,
                const std::vector<std::string>& allowed) {
  for (const auto& entry : map) {
    const std::string key = entry.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    throw ConfigError(fmt::format("{}: {}: unknown key '{}'{}; expected one of: {}",
                                  doc.where(entry.first), context, key, did_you_mean(key, allowed),
                                  join(allowed)));
  }
}

}  // namespace kiln
