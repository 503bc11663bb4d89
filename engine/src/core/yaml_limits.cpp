#include "core/yaml_limits.h"

#include <fmt/format.h>

namespace kiln {
namespace {

struct Walk {
  const YamlLimits& limits;
  std::int64_t visited = 0;
  std::optional<YamlLimitBreach> breach;

  // Recursion is bounded by max_depth, so the stack stays small.
  void visit(const YAML::Node& node, int depth) {
    if (breach) return;
    if (++visited > limits.max_nodes) {
      breach = YamlLimitBreach{node.Mark(),
                               fmt::format("expands to more than {} nodes (aliases repeated inside "
                                           "aliases?)",
                                           limits.max_nodes)};
      return;
    }
    if (!node.IsSequence() && !node.IsMap()) return;
    if (depth >= limits.max_depth) {
      breach = YamlLimitBreach{
          node.Mark(), fmt::format("nests deeper than {} levels (does an alias contain itself?)",
                                   limits.max_depth)};
      return;
    }
    for (const auto& item : node) {
      if (node.IsMap()) {
        visit(item.first, depth + 1);
        visit(item.second, depth + 1);
      } else {
        visit(item, depth + 1);
      }
      if (breach) return;
    }
  }
};

}  // namespace

std::optional<YamlLimitBreach> check_yaml_limits(const YAML::Node& root, const YamlLimits& limits) {
  Walk walk{limits};
  walk.visit(root, 0);
  return walk.breach;
}

}  // namespace kiln
