// Private: bounds on a YAML document as its readers will see it, aliases expanded.
//
// yaml-cpp (0.7) resolves an alias into a node shared with its anchor, so
// `a: &x [*x]` loads into a node that contains itself, and nine nested levels of
// nine aliases load in a kilobyte but expand to 9^9 nodes. Loading is safe; any
// recursive walk afterwards (yaml_to_json, a layer builder) loops until the stack
// or the memory runs out. Every YAML document kiln reads is checked here first.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>

namespace kiln {

struct YamlLimits {
  int max_depth = 64;                // nesting of sequences and mappings
  std::int64_t max_nodes = 1000000;  // nodes visited with every alias expanded
};

struct YamlLimitBreach {
  YAML::Mark mark;   // the node where the limit was crossed
  std::string what;  // e.g. "nests deeper than 64 levels (does an alias contain itself?)"
};

// Walks `root` with aliases expanded; stops at the first limit crossed.
std::optional<YamlLimitBreach> check_yaml_limits(const YAML::Node& root,
                                                 const YamlLimits& limits = {});

}  // namespace kiln
