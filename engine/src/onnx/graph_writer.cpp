#include "onnx/graph_writer.h"

#include <kiln/error.h>
#include <kiln/onnx.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "nn/layer.h"

namespace kiln::onnx {
namespace {

// The elements' bytes, little-endian whatever the host.
std::string little_endian_bytes(const Tensor& tensor) {
  std::string raw(static_cast<const char*>(tensor.raw()), tensor.nbytes());
  if constexpr (std::endian::native == std::endian::big)
    for (std::size_t i = 0; i + 4 <= raw.size(); i += 4)
      std::reverse(raw.begin() + i, raw.begin() + i + 4);
  return raw;
}

proto::ValueInfo value_info(const std::string& name, const Shape& per_sample) {
  proto::ValueInfo info{name, {{0, "batch"}}};
  for (const std::int64_t extent : per_sample) info.dims.push_back({extent, ""});
  return info;
}

}  // namespace

GraphWriter::GraphWriter(const std::map<std::string, Tensor>& tensors, std::string root)
    : tensors_(tensors), id_(std::move(root)) {}

std::string GraphWriter::write(const std::string& part, const nn::Layer& layer,
                               const std::string& input) {
  const std::string outer = id_;
  id_ += "." + part;
  std::string output = layer.to_onnx(*this, input);
  id_ = outer;
  return output;
}

std::string GraphWriter::add(const std::string& op_type, const std::string& output,
                             std::vector<std::string> inputs,
                             std::vector<proto::Attribute> attributes) {
  graph_.nodes.push_back({op_type, output, std::move(inputs), {output}, std::move(attributes)});
  return output;
}

std::string GraphWriter::initializer(const std::string& name) {
  const auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw InternalError(fmt::format("onnx export: {}: the model has no tensor '{}'", id_, name));
  if (it->second.dtype() != DType::F32)
    throw InternalError(
        fmt::format("onnx export: tensor '{}' is {}, not f32", name, name_of(it->second.dtype())));
  if (used_.insert(name).second)
    graph_.initializers.push_back({name, it->second.shape(), little_endian_bytes(it->second)});
  return name;
}

std::string GraphWriter::constant(const std::string& name, float value) {
  if (used_.insert(name).second)
    graph_.initializers.push_back({name, {}, little_endian_bytes(Tensor::full({1}, value))});
  return name;
}

proto::Graph GraphWriter::finish(const std::string& name, const std::string& last,
                                 const Shape& input, const Shape& output) {
  graph_.name = name;
  if (graph_.nodes.empty() || graph_.nodes.back().outputs[0] != last)
    add("Identity", kOutputName, {last});  // the input itself (a model of dropouts)
  else
    graph_.nodes.back().outputs[0] = kOutputName;
  graph_.inputs.push_back(value_info(kInputName, input));
  graph_.outputs.push_back(value_info(kOutputName, output));
  for (const auto& [tensor_name, tensor] : tensors_)
    if (!used_.contains(tensor_name))
      throw InternalError(fmt::format(
          "onnx export: tensor '{}' of the model is used by no layer of its spec", tensor_name));
  return std::move(graph_);
}

}  // namespace kiln::onnx
