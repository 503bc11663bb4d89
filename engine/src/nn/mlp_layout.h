// What an MlpSpec implies, shared by the model and its file reader, so that a file
// is checked against the spec before any parameter is allocated.
#pragma once

#include <kiln/nn/mlp.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::nn {

struct LayerShape {
  std::string weight_name;  // layers.<i>.weight, [out, in]
  std::string bias_name;    // layers.<i>.bias, [out]
  std::int64_t in = 0;
  std::int64_t out = 0;
};

std::vector<LayerShape> layer_shapes(const MlpSpec& spec);

// A layer width from a JSON spec: an integer in [1, 2^31 - 1], else DataError.
std::int64_t parse_width(const nlohmann::json& value, const std::string& what);

}  // namespace kiln::nn
