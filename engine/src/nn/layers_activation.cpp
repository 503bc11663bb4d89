// The activations: one layer over the elementwise functors of ops/activation_math.h,
// whose arithmetic serves the CPU loop and the CUDA kernel alike. Each type below
// is a functor, its settings and its ONNX form.
#include "nn/layer.h"
#include "onnx/graph_writer.h"
#include "ops/elementwise.h"

namespace kiln::nn {
namespace {

// Writes the ONNX nodes of functor `f` reading `input`; returns the output value.
template <class F>
using OnnxForm = std::string (*)(const F& f, onnx::GraphWriter& graph, const std::string& input);

template <class F>
class Activation final : public Layer {
 public:
  Activation(F f, nlohmann::json config, OnnxForm<F> onnx)
      : f_(f), config_(std::move(config)), onnx_(onnx) {}
  std::string type() const override {
    return config_.is_string() ? config_.get<std::string>() : config_.begin().key();
  }
  Shape output_shape(const Shape& input) const override { return input; }

  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    Tensor y = new_like(x);
    ops::elementwise_forward(f_, x, y);
    if (step.mode == Mode::Train) saved.tensors = {F::kSavesOutput ? y : x};
    return y;
  }
  Tensor backward(const Tensor& dy, Saved& saved, bool, const LayerDone&) override {
    Tensor dx = new_like(dy);
    ops::elementwise_backward(f_, saved.tensors.at(0), dy, dx);
    return dx;
  }
  nlohmann::json config() const override { return config_; }
  std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const override {
    return onnx_(f_, graph, input);
  }

 private:
  F f_;
  nlohmann::json config_;  // "relu", or {"<type>": {<settings>}}
  OnnxForm<F> onnx_;
};

// A layer type without settings over a default functor.
template <class F>
std::unique_ptr<Layer> plain(const char* name, OnnxForm<F> onnx) {
  return std::make_unique<Activation<F>>(F{}, name, onnx);
}

}  // namespace

extern const LayerType kReluLayer{
    "relu", "", [](LayerSettings&, LayerBuilder&, const Shape&, const std::string&) {
      return plain<ops::Relu>("relu",
                              [](const ops::Relu&, onnx::GraphWriter& graph, const std::string& x) {
                                return graph.add("Relu", graph.id(), {x});
                              });
    }};

// ONNX's Gelu is opset 20: 0.5 x (1 + erf(x / sqrt 2)) from Mul, Erf, Add, the
// steps kiln computes, in that order.
extern const LayerType kGeluLayer{
    "gelu", "", [](LayerSettings&, LayerBuilder&, const Shape&, const std::string&) {
      return plain<ops::Gelu>(
          "gelu", [](const ops::Gelu&, onnx::GraphWriter& graph, const std::string& x) {
            const std::string id = graph.id();
            const std::string half_x =
                graph.add("Mul", id + "/half_x", {graph.constant("kiln.half", 0.5f), x});
            const std::string scaled = graph.add(
                "Mul", id + "/scaled", {x, graph.constant("kiln.inv_sqrt2", ops::Gelu::kInvSqrt2)});
            const std::string erf = graph.add("Erf", id + "/erf", {scaled});
            const std::string one_plus =
                graph.add("Add", id + "/one_plus_erf", {graph.constant("kiln.one", 1.0f), erf});
            return graph.add("Mul", id, {half_x, one_plus});
          });
    }};

// ONNX's Swish is opset 24: x * Sigmoid(x).
extern const LayerType kSiluLayer{
    "silu", "", [](LayerSettings&, LayerBuilder&, const Shape&, const std::string&) {
      return plain<ops::Silu>(
          "silu", [](const ops::Silu&, onnx::GraphWriter& graph, const std::string& x) {
            const std::string sigmoid = graph.add("Sigmoid", graph.id() + "/sigmoid", {x});
            return graph.add("Mul", graph.id(), {x, sigmoid});
          });
    }};

extern const LayerType kLeakyReluLayer{
    "leaky_relu", "negative_slope (0.01, in [0, 1])",
    [](LayerSettings& settings, LayerBuilder&, const Shape&,
       const std::string&) -> std::unique_ptr<Layer> {
      const auto slope = static_cast<float>(settings.number("negative_slope", 0.01, 0.0, 1.0));
      settings.finish();
      return std::make_unique<Activation<ops::LeakyRelu>>(
          ops::LeakyRelu{slope}, nlohmann::json{{"leaky_relu", {{"negative_slope", slope}}}},
          [](const ops::LeakyRelu& f, onnx::GraphWriter& graph, const std::string& x) {
            return graph.add("LeakyRelu", graph.id(), {x}, {{"alpha", f.negative_slope}});
          });
    }};

}  // namespace kiln::nn
