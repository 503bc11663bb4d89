// Pipeline files made to break a YAML reader: aliases that contain themselves or
// multiply (shared by the pipeline and CLI tests).
#pragma once

#include <string>

namespace kiln::test {

// A stage whose model contains itself through an alias (line 5).
inline std::string self_alias_pipeline() {
  return "stages:\n  train:\n    uses: train\n    with:\n"
         "      model: &a {input: [1], layers: [*a]}\n      epochs: 1\n";
}

// A 1 KB pipeline whose model layers hold nine levels of nine aliases: 9^9 nodes
// once expanded.
inline std::string alias_bomb_pipeline() {
  std::string text =
      "stages:\n  train:\n    uses: train\n    with:\n      model:\n        input: [1]\n"
      "        layers:\n          - &l0 [relu, relu, relu, relu, relu, relu, relu, relu, relu]\n";
  for (int level = 1; level < 10; ++level) {
    text += "          - &l" + std::to_string(level) + " [";
    for (int i = 0; i < 9; ++i) text += (i ? ", *l" : "*l") + std::to_string(level - 1);
    text += "]\n";
  }
  return text;
}

}  // namespace kiln::test
