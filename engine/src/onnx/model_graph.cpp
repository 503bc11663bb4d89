// A kiln model as ONNX operators (opset 17), in eval mode. Each layer class writes
// its own form (nn/layers_*.cpp, Layer::to_onnx); this walks the built model from
// its root sequence.
#include "onnx/model_graph.h"

#include <kiln/onnx.h>

#include <fmt/format.h>

#include "nn/layer.h"
#include "onnx/graph_writer.h"

namespace kiln::onnx {

namespace {

// The columns `columns` of `input` [N, C] (Gather on axis 1).
std::string columns_of(GraphWriter& graph, const std::string& name, const std::string& input,
                       std::vector<std::int64_t> columns) {
  const std::string indices =
      graph.add("Constant", name + "/indices", {}, {{"value_ints", std::move(columns)}});
  return graph.add("Gather", name, {input, indices}, {{"axis", std::int64_t{1}}});
}

std::string tabular_preprocess(GraphWriter& graph, const ModelParts& parts, std::string input) {
  std::vector<std::string> pieces;
  if (parts.tensors.contains(std::string(kPreprocessCenter))) {
    std::string numeric = input;
    if (!parts.one_hot.empty())
      numeric = columns_of(graph, "preprocess/numeric", input, parts.numeric_columns);
    const std::string missing = graph.add("IsNaN", "preprocess/isnan", {numeric});
    const std::string filled =
        graph.add("Where", "preprocess/impute",
                  {missing, graph.initializer(std::string(kPreprocessFill)), numeric});
    const std::string centered = graph.add(
        "Sub", "preprocess/center", {filled, graph.initializer(std::string(kPreprocessCenter))});
    pieces.push_back(graph.add("Div", "preprocess/scale",
                               {centered, graph.initializer(std::string(kPreprocessScale))}));
  }
  for (std::size_t i = 0; i < parts.one_hot.size(); ++i) {
    const std::string name = fmt::format("preprocess/one_hot.{}", i);
    const std::string column = columns_of(graph, name + "/column", input, {parts.one_hot[i].first});
    const std::string equal =
        graph.add("Equal", name + "/equal", {column, graph.initializer(one_hot_codes_name(i))});
    pieces.push_back(graph.add("Cast", name, {equal}, {{"to", std::int64_t{proto::kFloat}}}));
  }
  if (pieces.size() == 1) return pieces.front();
  return graph.add("Concat", "preprocess/features", pieces, {{"axis", std::int64_t{1}}});
}

}  // namespace

proto::Graph model_graph(const nn::Layer& root, const ModelParts& parts, const std::string& name) {
  GraphWriter graph(parts.tensors);
  std::string input = kInputName;
  if (parts.tensors.contains(std::string(kPreprocessCenter)) || !parts.one_hot.empty())
    input = tabular_preprocess(graph, parts, input);
  const std::string last = root.to_onnx(graph, input);
  return graph.finish(name, last, parts.input, parts.output);
}

}  // namespace kiln::onnx
