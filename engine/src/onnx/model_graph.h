// Private to the onnx area: a built kiln model turned into an ONNX graph by walking
// its layers, each of which writes its own nodes (Layer::to_onnx). Split from
// export_model so that tests can hand it layers and tensors that nn::Model would
// not hold (a layer type with no ONNX form, a tensor no layer uses).
#pragma once

#include <kiln/tensor/tensor.h>

#include <map>
#include <string>
#include <string_view>

#include "onnx/onnx_proto.h"

namespace kiln::nn {
class Layer;
}

namespace kiln::onnx {

struct ModelParts {
  Shape input, output;                    // per sample
  std::map<std::string, Tensor> tensors;  // parameters and buffers by name, CPU float32
};

// One node (or a few) per layer, weights as initializers, input "input" and output
// "logits" with a symbolic batch axis. `root` is the model's sequence of layers,
// named "layers". ConfigError "onnx export: <layer> (<type>): ..." for a layer type
// with no ONNX form; InternalError when the layers and the tensors disagree (a
// tensor missing, or one that no layer uses).
proto::Graph model_graph(const nn::Layer& root, const ModelParts& parts, const std::string& name);

// Tensors that, when ModelParts holds them, put fitted tabular preprocessing before
// the first layer: x = (IsNaN(x) ? fill : x) - center) / scale.
inline constexpr std::string_view kPreprocessFill = "preprocess.fill";
inline constexpr std::string_view kPreprocessCenter = "preprocess.center";
inline constexpr std::string_view kPreprocessScale = "preprocess.scale";

}  // namespace kiln::onnx
