// The model and optimizers that the checkpoint fuzz target restores into, shared
// with the seed writer so that the seeds are checkpoints of this very model: a
// batch norm (so buffers too) before a linear layer.
#pragma once

#include <kiln/nn/model.h>
#include <kiln/nn/optimizer.h>

#include <nlohmann/json.hpp>

namespace kiln::fuzz {

inline nlohmann::json checkpoint_model_spec() {
  return nlohmann::json::parse(R"({"input": [2, 3, 3],
    "layers": [{"batchnorm2d": {}}, "flatten", {"linear": {"out": 3}}]})");
}

inline nn::SgdOptions checkpoint_sgd() { return {.lr = 0.1, .momentum = 0.9}; }

}  // namespace kiln::fuzz
