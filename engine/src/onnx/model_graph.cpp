// A kiln model's layers as ONNX operators (opset 17), in eval mode:
//   linear          Gemm(x, weight, bias, transB = 1)  (weight is [out, in])
//   conv2d          Conv(x, weight, bias), square kernel, stride, symmetric padding
//   maxpool2d       MaxPool (padding never wins, as in kiln: ONNX pads with -inf)
//   avgpool2d       AveragePool, count_include_pad = 1 (kiln divides by k * k)
//   global_avgpool  GlobalAveragePool, then Flatten ([N, C, 1, 1] -> [N, C])
//   batchnorm2d     BatchNormalization with the running mean and variance
//   layernorm       LayerNormalization over the last axis
//   relu            Relu
//   gelu            0.5 x (1 + erf(x / sqrt 2)) from Mul, Erf, Add: Gelu itself is opset 20
//   dropout         nothing (the identity at inference)
//   flatten         Flatten(axis = 1)
//   residual        Add(x, body(x))
//   block           its layers, in place
// Values and nodes are named after the layer ("layers.3", "layers.2.body.0"), a
// layer's inner steps with a suffix ("layers.5/erf"); initializers keep the
// tensors' names, so an ONNX viewer shows the names of the safetensors file.
#include <kiln/error.h>
#include <kiln/onnx.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <set>

#include "onnx/model_graph.h"

namespace kiln::onnx {
namespace {

using Json = nlohmann::json;
using proto::Attribute;
using Ints = std::vector<std::int64_t>;

// One layer entry being translated.
struct LayerCall {
  std::string type;
  const Json& settings;  // {} for layers without settings
  std::string prefix;    // "layers.3." (tensor names are prefix + "weight")
  std::string where;     // "layers[3]", for errors
  std::string x;         // the input value
  std::string id() const { return prefix.substr(0, prefix.size() - 1); }
};

// The elements' bytes, little-endian whatever the host.
std::string little_endian_bytes(const Tensor& tensor) {
  std::string raw(static_cast<const char*>(tensor.raw()), tensor.nbytes());
  if constexpr (std::endian::native == std::endian::big)
    for (std::size_t i = 0; i + 4 <= raw.size(); i += 4)
      std::reverse(raw.begin() + i, raw.begin() + i + 4);
  return raw;
}

class GraphBuilder {
 public:
  explicit GraphBuilder(const ModelParts& parts) : parts_(parts) {}

  proto::Graph build(const std::string& name) {
    graph_.name = name;
    const auto layers = parts_.spec.find("layers");
    if (layers == parts_.spec.end() || !layers->is_array())
      throw InternalError("onnx export: the model spec has no list of layers");
    const std::string last = sequence(*layers, "layers.", "layers", kInputName);
    name_output(last);
    graph_.inputs.push_back(value_info(kInputName, parts_.input));
    graph_.outputs.push_back(value_info(kOutputName, parts_.output));
    for (const auto& [tensor_name, tensor] : parts_.tensors)
      if (!used_.contains(tensor_name))
        throw InternalError(fmt::format(
            "onnx export: tensor '{}' of the model is used by no layer of its spec", tensor_name));
    return std::move(graph_);
  }

 private:
  using Handler = std::string (GraphBuilder::*)(const LayerCall&);

  // The one table of layer types with an ONNX form.
  static const std::map<std::string, Handler>& handlers() {
    static const std::map<std::string, Handler> table = {
        {"linear", &GraphBuilder::linear},
        {"conv2d", &GraphBuilder::conv2d},
        {"maxpool2d", &GraphBuilder::max_pool2d},
        {"avgpool2d", &GraphBuilder::avg_pool2d},
        {"global_avgpool", &GraphBuilder::global_avg_pool},
        {"batchnorm2d", &GraphBuilder::batch_norm2d},
        {"layernorm", &GraphBuilder::layer_norm},
        {"relu", &GraphBuilder::relu},
        {"gelu", &GraphBuilder::gelu},
        {"dropout", &GraphBuilder::dropout},
        {"flatten", &GraphBuilder::flatten},
        {"residual", &GraphBuilder::residual},
    };
    return table;
  }

  static std::string type_names() {
    std::vector<std::string> names = {"block"};
    for (const auto& [type, handler] : handlers()) names.push_back(type);
    std::sort(names.begin(), names.end());
    return fmt::format("{}", fmt::join(names, ", "));
  }

  std::string sequence(const Json& list, const std::string& prefix, const std::string& where,
                       std::string x) {
    for (std::size_t i = 0; i < list.size(); ++i)
      x = layer(list[i], fmt::format("{}{}.", prefix, i), fmt::format("{}[{}]", where, i), x);
    return x;
  }

  std::string layer(const Json& entry, const std::string& prefix, const std::string& where,
                    const std::string& x) {
    static const Json kNoSettings = Json::object();
    // A block is inlined by Model::spec() as a nested list, its layers under its index.
    if (entry.is_array()) return sequence(entry, prefix, where + ".block", x);
    if (entry.is_string())
      return dispatch({entry.get<std::string>(), kNoSettings, prefix, where, x});
    if (entry.is_object() && entry.size() == 1)
      return dispatch({entry.begin().key(), entry.begin().value(), prefix, where, x});
    throw InternalError(fmt::format("onnx export: {}: not a layer entry: {}", where, entry.dump()));
  }

  std::string dispatch(const LayerCall& call) {
    const auto handler = handlers().find(call.type);
    if (handler == handlers().end())
      throw ConfigError(fmt::format(
          "onnx export: {} ({}): this layer type has no ONNX export; exportable types: {}",
          call.where, call.type, type_names()));
    return (this->*handler->second)(call);
  }

  // --- settings of the filled-in spec -------------------------------------------------

  static const Json& setting(const LayerCall& call, const char* key) {
    const auto it = call.settings.find(key);
    if (it == call.settings.end())
      throw InternalError(fmt::format("onnx export: {} ({}): the model spec lacks '{}'", call.where,
                                      call.type, key));
    return *it;
  }
  static std::int64_t integer(const LayerCall& call, const char* key) {
    return setting(call, key).get<std::int64_t>();
  }
  // kiln keeps eps as float32: the spec's double rounds back to the same float.
  static float number(const LayerCall& call, const char* key) {
    return static_cast<float>(setting(call, key).get<double>());
  }

  // --- graph pieces -------------------------------------------------------------------

  // Appends a node named `output` with that one output; returns it.
  std::string add(const std::string& op_type, const std::string& output,
                  std::vector<std::string> inputs, std::vector<Attribute> attributes = {}) {
    graph_.nodes.push_back({op_type, output, std::move(inputs), {output}, std::move(attributes)});
    return output;
  }

  // The model tensor `prefix + suffix` as an initializer.
  std::string tensor(const LayerCall& call, const char* suffix) {
    const std::string name = call.prefix + suffix;
    const auto it = parts_.tensors.find(name);
    if (it == parts_.tensors.end())
      throw InternalError(fmt::format("onnx export: {} ({}): the model has no tensor '{}'",
                                      call.where, call.type, name));
    if (it->second.dtype() != DType::F32)
      throw InternalError(fmt::format("onnx export: tensor '{}' is {}, not f32", name,
                                      name_of(it->second.dtype())));
    if (used_.insert(name).second)
      graph_.initializers.push_back({name, it->second.shape(), little_endian_bytes(it->second)});
    return name;
  }

  // A float32 scalar initializer, added once.
  std::string constant(const std::string& name, float value) {
    if (used_.insert(name).second)
      graph_.initializers.push_back({name, {}, little_endian_bytes(Tensor::full({1}, value))});
    return name;
  }

  static proto::ValueInfo value_info(const std::string& name, const Shape& per_sample) {
    proto::ValueInfo info{name, {{0, "batch"}}};
    for (const std::int64_t extent : per_sample) info.dims.push_back({extent, ""});
    return info;
  }

  // The last layer's value becomes the graph output "logits".
  void name_output(const std::string& last) {
    if (graph_.nodes.empty() || graph_.nodes.back().outputs[0] != last) {
      add("Identity", kOutputName, {last});  // the input itself (a model of dropouts)
      return;
    }
    graph_.nodes.back().outputs[0] = kOutputName;
  }

  // --- the layers -----------------------------------------------------------------------

  std::string linear(const LayerCall& call) {
    std::vector<std::string> inputs = {call.x, tensor(call, "weight")};
    if (setting(call, "bias").get<bool>()) inputs.push_back(tensor(call, "bias"));
    return add("Gemm", call.id(), inputs, {{"transB", std::int64_t{1}}});
  }

  std::string conv2d(const LayerCall& call) {
    const std::int64_t k = integer(call, "kernel"), s = integer(call, "stride"),
                       p = integer(call, "padding");
    std::vector<std::string> inputs = {call.x, tensor(call, "weight")};
    if (setting(call, "bias").get<bool>()) inputs.push_back(tensor(call, "bias"));
    return add("Conv", call.id(), inputs,
               {{"kernel_shape", Ints{k, k}}, {"strides", Ints{s, s}}, {"pads", Ints{p, p, p, p}}});
  }

  std::vector<Attribute> pool_window(const LayerCall& call) {
    const std::int64_t k = integer(call, "kernel"), s = integer(call, "stride"),
                       p = integer(call, "padding");
    return {{"kernel_shape", Ints{k, k}}, {"strides", Ints{s, s}}, {"pads", Ints{p, p, p, p}}};
  }

  std::string max_pool2d(const LayerCall& call) {
    return add("MaxPool", call.id(), {call.x}, pool_window(call));
  }

  std::string avg_pool2d(const LayerCall& call) {
    std::vector<Attribute> attributes = pool_window(call);
    attributes.push_back({"count_include_pad", std::int64_t{1}});
    return add("AveragePool", call.id(), {call.x}, attributes);
  }

  std::string global_avg_pool(const LayerCall& call) {
    const std::string pooled = add("GlobalAveragePool", call.id() + "/pool", {call.x});
    return add("Flatten", call.id(), {pooled}, {{"axis", std::int64_t{1}}});
  }

  std::string batch_norm2d(const LayerCall& call) {
    return add("BatchNormalization", call.id(),
               {call.x, tensor(call, "weight"), tensor(call, "bias"), tensor(call, "running_mean"),
                tensor(call, "running_var")},
               {{"epsilon", number(call, "eps")}});
  }

  std::string layer_norm(const LayerCall& call) {
    return add("LayerNormalization", call.id(),
               {call.x, tensor(call, "weight"), tensor(call, "bias")},
               {{"axis", std::int64_t{-1}}, {"epsilon", number(call, "eps")}});
  }

  std::string relu(const LayerCall& call) { return add("Relu", call.id(), {call.x}); }

  // kiln computes 0.5f * x * (1 + erf(x * (1 / sqrt 2))): the same steps, in that order.
  std::string gelu(const LayerCall& call) {
    const std::string id = call.id();
    const std::string half_x = add("Mul", id + "/half_x", {constant("kiln.half", 0.5f), call.x});
    const std::string scaled =
        add("Mul", id + "/scaled", {call.x, constant("kiln.inv_sqrt2", 0.70710678118654752f)});
    const std::string erf = add("Erf", id + "/erf", {scaled});
    const std::string one_plus =
        add("Add", id + "/one_plus_erf", {constant("kiln.one", 1.0f), erf});
    return add("Mul", id, {half_x, one_plus});
  }

  std::string dropout(const LayerCall& call) { return call.x; }

  std::string flatten(const LayerCall& call) {
    return add("Flatten", call.id(), {call.x}, {{"axis", std::int64_t{1}}});
  }

  std::string residual(const LayerCall& call) {
    const std::string body =
        sequence(call.settings, call.prefix + "body.", call.where + ".residual", call.x);
    return add("Add", call.id(), {call.x, body});
  }

  const ModelParts& parts_;
  proto::Graph graph_;
  std::set<std::string> used_;  // names of initializers added so far
};

}  // namespace

proto::Graph model_graph(const ModelParts& parts, const std::string& name) {
  return GraphBuilder(parts).build(name);
}

}  // namespace kiln::onnx
