// Private to the onnx area: a built kiln model turned into an ONNX graph by walking
// its layers, each of which writes its own nodes (Layer::to_onnx). Split from
// export_model so that tests can hand it layers and tensors that nn::Model would
// not hold (a layer type with no ONNX form, a tensor no layer uses).
#pragma once

#include <kiln/tensor/tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "onnx/onnx_proto.h"

namespace kiln::nn {
class Layer;
}

namespace kiln::onnx {

struct ModelParts {
  Shape input, output;                    // per sample
  std::map<std::string, Tensor> tensors;  // parameters and buffers by name, CPU float32
  // Fitted tabular preprocessing with one-hot columns (kiln/train/tabular.h): the
  // input columns that are numbers (kPreprocess* hold their numbers) and, per
  // categorical column, its input column and number of categories. Empty: every
  // input column is a number.
  std::vector<std::int64_t> numeric_columns;
  std::vector<std::pair<std::int64_t, std::int64_t>> one_hot;
};

// One node (or a few) per layer, weights as initializers, input "input" and output
// "logits" with a symbolic batch axis. `root` is the model's sequence of layers,
// named "layers". ConfigError "onnx export: <layer> (<type>): ..." for a layer type
// with no ONNX form; InternalError when the layers and the tensors disagree (a
// tensor missing, or one that no layer uses).
proto::Graph model_graph(const nn::Layer& root, const ModelParts& parts, const std::string& name);

// Tensors that, when ModelParts holds them, put fitted tabular preprocessing before
// the first layer: x = (IsNaN(x) ? fill : x) - center) / scale. With one-hot
// columns, that applies to the numeric columns (Gather), and each categorical
// column c of k categories adds Cast(Equal(x[:, c], [0 .. k-1])) after them (Concat).
inline constexpr std::string_view kPreprocessFill = "preprocess.fill";
inline constexpr std::string_view kPreprocessCenter = "preprocess.center";
inline constexpr std::string_view kPreprocessScale = "preprocess.scale";
// The codes 0 .. k-1 of one-hot column i (float32 [k]).
inline std::string one_hot_codes_name(std::size_t i) {
  return "preprocess.one_hot." + std::to_string(i) + ".codes";
}

}  // namespace kiln::onnx
