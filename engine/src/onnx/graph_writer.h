// What a layer's to_onnx writes into (nn/layer.h): the ONNX graph being built, the
// model's tensors to take initializers from, and the name of the layer being
// written. The exporter (onnx/model_graph.cpp) walks the built model: a container
// writes its children with write(); a leaf layer adds its nodes with add().
//
// Values and nodes are named after the layer ("layers.3", "layers.2.body.0"), a
// layer's inner steps with a suffix ("layers.5/erf"); initializers keep the
// tensors' names, so an ONNX viewer shows the names of the safetensors file.
#pragma once

#include <kiln/tensor/tensor.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "onnx/onnx_proto.h"

namespace kiln::nn {
class Layer;
}

namespace kiln::onnx {

class GraphWriter {
 public:
  // `tensors`: the model's parameters and buffers by name, CPU float32.
  explicit GraphWriter(const std::map<std::string, Tensor>& tensors, std::string root = "layers");

  // The name of the layer being written ("layers.3").
  const std::string& id() const noexcept { return id_; }
  // Writes `layer` as part `part` of the current one (a sequence's index, a
  // residual's "body"); returns its output value.
  std::string write(const std::string& part, const nn::Layer& layer, const std::string& input);

  // Appends a node named `output` with that one output; returns it.
  std::string add(const std::string& op_type, const std::string& output,
                  std::vector<std::string> inputs, std::vector<proto::Attribute> attributes = {});
  // The model tensor `name` as an initializer (added once); InternalError if the
  // model has no such float32 tensor.
  std::string initializer(const std::string& name);
  // A float32 scalar initializer, added once.
  std::string constant(const std::string& name, float value);

  // The graph: `last` becomes the output "logits", "input" and "logits" get a
  // symbolic batch axis. InternalError for a model tensor that no layer used.
  proto::Graph finish(const std::string& name, const std::string& last, const Shape& input,
                      const Shape& output);

 private:
  const std::map<std::string, Tensor>& tensors_;
  std::string id_;
  proto::Graph graph_;
  std::set<std::string> used_;  // names of initializers added so far
};

}  // namespace kiln::onnx
