// A kiln model as ONNX operators (opset 17), in eval mode. Each layer class writes
// its own form (nn/layers_*.cpp, Layer::to_onnx); this walks the built model from
// its root sequence.
#include "onnx/model_graph.h"

#include <kiln/onnx.h>

#include "nn/layer.h"
#include "onnx/graph_writer.h"

namespace kiln::onnx {

proto::Graph model_graph(const nn::Layer& root, const ModelParts& parts, const std::string& name) {
  GraphWriter graph(parts.tensors);
  std::string input = kInputName;
  if (parts.tensors.contains(std::string(kPreprocessCenter))) {
    const std::string missing = graph.add("IsNaN", "preprocess/isnan", {input});
    const std::string filled =
        graph.add("Where", "preprocess/impute",
                  {missing, graph.initializer(std::string(kPreprocessFill)), input});
    const std::string centered = graph.add(
        "Sub", "preprocess/center", {filled, graph.initializer(std::string(kPreprocessCenter))});
    input = graph.add("Div", "preprocess/scale",
                      {centered, graph.initializer(std::string(kPreprocessScale))});
  }
  const std::string last = root.to_onnx(graph, input);
  return graph.finish(name, last, parts.input, parts.output);
}

}  // namespace kiln::onnx
