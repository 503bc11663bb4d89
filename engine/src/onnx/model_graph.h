// Private to the onnx area: a kiln model, as the exporter reads it, turned into an
// ONNX graph. Split from export_model so that tests can hand it specs that
// nn::Model would not build (a layer type with no ONNX form).
#pragma once

#include <kiln/tensor/tensor.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "onnx/onnx_proto.h"

namespace kiln::onnx {

struct ModelParts {
  // nn::Model::spec(): every default filled in, blocks inlined as nested lists.
  nlohmann::json spec;
  Shape input, output;                    // per sample
  std::map<std::string, Tensor> tensors;  // parameters and buffers by name, CPU float32
};

// One node (or a few) per layer, weights as initializers, input "input" and output
// "logits" with a symbolic batch axis. ConfigError "onnx export: <where> (<type>):
// ..." for a layer type with no ONNX form; InternalError when the spec and the
// tensors disagree (a tensor missing, or one that no layer uses).
proto::Graph model_graph(const ModelParts& parts, const std::string& name);

}  // namespace kiln::onnx
