// Private to the sweep area: reading typed values out of the `sweep:` section with
// the pipeline document's positions, so every error names file:line:col.
#pragma once

#include "pipeline/yaml_document.h"

#include <kiln/sweep/spec.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::sweep {

struct SpecReader {
  const PipelineYaml& doc;

  // ConfigError "<where node>: <context>: <problem>".
  [[noreturn]] void fail(const YAML::Node& node, std::string_view context,
                         std::string_view problem) const;

  nlohmann::json value(const YAML::Node& node) const;  // YAML 1.2 core schema
  double number(const YAML::Node& node, std::string_view context, std::string_view what) const;
  std::int64_t integer(const YAML::Node& node, std::string_view context,
                       std::string_view what) const;
  bool boolean(const YAML::Node& node, std::string_view context, std::string_view what) const;
  std::string text(const YAML::Node& node, std::string_view context, std::string_view what) const;
  // One of `allowed`, else "<what> 'x' is not one of a, b (did you mean 'a'?)".
  std::string one_of(const YAML::Node& node, std::string_view context, std::string_view what,
                     const std::vector<std::string>& allowed) const;
  // A mapping with keys among `allowed` (check_keys' message), no duplicates.
  std::vector<MappingEntry> mapping(const YAML::Node& node, std::string_view context,
                                    const std::vector<std::string>& allowed) const;
};

// `sweep.space`: each entry a parameter path of a stage in `stages` and its
// distribution (spec_space.cpp).
std::vector<SweepParam> parse_space(const SpecReader& reader, const YAML::Node& space,
                                    const std::vector<std::string>& stages);

}  // namespace kiln::sweep
