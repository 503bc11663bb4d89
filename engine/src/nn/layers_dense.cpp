// Linear, dropout and flatten.
#include <cmath>

#include "nn/layer.h"
#include "onnx/graph_writer.h"
#include "ops/activation.h"
#include "ops/gemm.h"

namespace kiln::nn {
namespace {

std::int64_t features_of(const Shape& input) { return shape_elements(input); }

class Linear final : public Layer {
 public:
  Linear(LayerBuilder& builder, std::int64_t in, std::int64_t out, bool bias) : in_(in), out_(out) {
    // torch.nn.Linear: kaiming_uniform(a=sqrt(5)) reduces to U(-1/sqrt(in), 1/sqrt(in)).
    const float bound = 1.0f / std::sqrt(static_cast<float>(in));
    weight_ = {builder.prefix + "weight", builder.uniform({out, in}, bound),
               Tensor::zeros({out, in}, DType::F32, builder.device)};
    if (bias)
      bias_ = {builder.prefix + "bias", builder.uniform({out}, bound),
               Tensor::zeros({out}, DType::F32, builder.device)};
  }
  std::string type() const override { return "linear"; }
  Shape output_shape(const Shape&) const override { return {out_}; }

  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    const Tensor input = x.reshape({x.dim(0), in_});
    Tensor y = Tensor::empty({x.dim(0), out_}, DType::F32, x.device());
    ops::gemm(input, false, weight_.value, true, y, 1.0f, 0.0f, math_of(step.precision),
              bias_.value);
    if (step.mode == Mode::Train) {
      saved.tensors = {input};
      saved.precision = step.precision;
    }
    return y;
  }

  Tensor backward(const Tensor& dy, Saved& saved, bool need_input_grad, const LayerDone&) override {
    const Tensor& input = saved.tensors.at(0);
    const ops::MathPrecision precision = math_of(saved.precision);
    // Written where zero_grad was left to this pass, else added to.
    const bool add = !grad_zero_pending_;
    grad_zero_pending_ = false;
    ops::gemm(dy, true, input, false, weight_.grad, 1.0f, add ? 1.0f : 0.0f, precision);
    if (bias_.value.defined()) ops::sum_rows(dy, bias_.grad, add);
    if (!need_input_grad) return {};
    Tensor dx = Tensor::empty(input.shape(), DType::F32, dy.device());
    ops::gemm(dy, false, weight_.value, false, dx, 1.0f, 0.0f, precision);
    return dx;
  }

  void collect_parameters(std::vector<Parameter*>& out) override {
    out.push_back(&weight_);
    if (bias_.value.defined()) out.push_back(&bias_);
  }
  // The memset of the gradients was 4% of the MLP's step on 2 cores.
  void zero_grad(bool in_backward) override {
    grad_zero_pending_ = in_backward;
    if (in_backward) return;
    weight_.grad.zero();
    if (bias_.value.defined()) bias_.grad.zero();
  }
  nlohmann::json config() const override {
    return {{"linear", {{"out", out_}, {"bias", bias_.value.defined()}}}};
  }
  // Gemm(x, weight, bias, transB = 1): the weight is [out, in].
  std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const override {
    std::vector<std::string> inputs = {input, graph.initializer(weight_.name)};
    if (bias_.value.defined()) inputs.push_back(graph.initializer(bias_.name));
    return graph.add("Gemm", graph.id(), inputs, {{"transB", std::int64_t{1}}});
  }

 private:
  std::int64_t in_, out_;
  Parameter weight_, bias_;
  bool grad_zero_pending_ = false;  // zero_grad(true) since the last backward pass
};

class Dropout final : public Layer {
 public:
  Dropout(float p, std::uint32_t id) : p_(p), id_(id) {}
  std::string type() const override { return "dropout"; }
  Shape output_shape(const Shape& input) const override { return input; }

  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    if (step.mode != Mode::Train || p_ == 0.0f) return x;
    Tensor y = new_like(x);
    Tensor mask = Tensor::empty(x.shape(), DType::U8, x.device());
    ops::dropout_forward(x, p_, {step.seed, id_, static_cast<std::uint32_t>(step.step)}, y, mask);
    saved.tensors = {mask};
    return y;
  }
  Tensor backward(const Tensor& dy, Saved& saved, bool, const LayerDone&) override {
    if (saved.tensors.empty()) return dy;
    Tensor dx = new_like(dy);
    ops::dropout_backward(dy, saved.tensors.at(0), p_, dx);
    return dx;
  }
  nlohmann::json config() const override { return {{"dropout", {{"p", p_}}}}; }
  // The identity at inference: no node.
  std::string to_onnx(onnx::GraphWriter&, const std::string& input) const override { return input; }

 private:
  float p_;
  std::uint32_t id_;  // which dropout layer: part of the mask's random-number address
};

class Flatten final : public Layer {
 public:
  std::string type() const override { return "flatten"; }
  Shape output_shape(const Shape& input) const override { return {features_of(input)}; }
  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    if (step.mode == Mode::Train) saved.tensors = {x};
    return x.reshape({x.dim(0), -1});
  }
  Tensor backward(const Tensor& dy, Saved& saved, bool, const LayerDone&) override {
    return dy.reshape(saved.tensors.at(0).shape());
  }
  nlohmann::json config() const override { return "flatten"; }
  std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const override {
    return graph.add("Flatten", graph.id(), {input}, {{"axis", std::int64_t{1}}});
  }
};

}  // namespace

extern const LayerType kLinearLayer{
    "linear", "out (integer >= 1), bias (true)",
    [](LayerSettings& settings, LayerBuilder& builder, const Shape& input,
       const std::string& where) -> std::unique_ptr<Layer> {
      const std::int64_t out = settings.required_integer("out", 1);
      const bool bias = settings.flag("bias", true);
      settings.finish();
      if (input.size() != 1)
        spec_error(where, "linear",
                   "needs a flat input, got " + shape_string(input) + " (put a flatten before it)");
      return std::make_unique<Linear>(builder, input[0], out, bias);
    }};

extern const LayerType kDropoutLayer{
    "dropout", "p (0.5, in [0, 0.999])",
    [](LayerSettings& settings, LayerBuilder& builder, const Shape&,
       const std::string&) -> std::unique_ptr<Layer> {
      const auto p = static_cast<float>(settings.number("p", 0.5, 0.0, 0.999));
      settings.finish();
      return std::make_unique<Dropout>(p, builder.dropout_layers++);
    }};

extern const LayerType kFlattenLayer{
    "flatten", "",
    [](LayerSettings&, LayerBuilder&, const Shape&, const std::string&) -> std::unique_ptr<Layer> {
      return std::make_unique<Flatten>();
    }};

}  // namespace kiln::nn
