// Private to the pipeline area: the parsed pipeline document and YAML helpers.
#pragma once

#include <kiln/pipeline.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct PipelineYaml {
  YAML::Node root;
  std::string display_path;  // the file as the user named it
  // "stages.<stage>.with.<param>" -> "override 'train.with.lr=3e-4'"
  std::map<std::string, std::string> override_origins;

  // "file:line:col" of a node from the file.
  std::string where(const YAML::Node& node) const;
  std::string where(const YAML::Mark& mark) const;
};

// ConfigError "<where>: <what> <limit crossed>" when `node` nests too deep or its
// aliases expand too far (core/yaml_limits.h).
void check_limits(const PipelineYaml& doc, const YAML::Node& node, std::string_view what);

// "did you mean 'x'?" wrapped as " (did you mean 'x'?)", or "" without a candidate.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);
std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");

struct MappingEntry {
  std::string key;
  YAML::Node key_node;  // for its position in the file
  YAML::Node value;
};

// The entries of a mapping in document order; ConfigError on a duplicate key or a
// non-scalar key.
std::vector<MappingEntry> mapping_entries(const PipelineYaml& doc, const YAML::Node& map,
                                          std::string_view what);
// ConfigError "<where>: <context>: unknown key 'k' (did you mean ..?); expected one of ..."
// for each key of `map` not in `allowed`.
void check_keys(const PipelineYaml& doc, const YAML::Node& map, std::string_view context,
                const std::vector<std::string>& allowed);

}  // namespace kiln
