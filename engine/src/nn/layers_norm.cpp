// BatchNorm2d and LayerNorm.
#include "nn/layer.h"
#include "onnx/graph_writer.h"
#include "ops/norm.h"

namespace kiln::nn {
namespace {

Parameter make_parameter(LayerBuilder& builder, const char* name, std::int64_t size, float value) {
  return {builder.prefix + name, builder.constant({size}, value),
          Tensor::zeros({size}, DType::F32, builder.device)};
}

class BatchNorm2d final : public Layer {
 public:
  BatchNorm2d(LayerBuilder& builder, std::int64_t channels, float eps, float momentum)
      : channels_(channels),
        eps_(eps),
        momentum_(momentum),
        gamma_(make_parameter(builder, "weight", channels, 1.0f)),
        beta_(make_parameter(builder, "bias", channels, 0.0f)),
        prefix_(builder.prefix),
        running_mean_(builder.constant({channels}, 0.0f)),
        running_var_(builder.constant({channels}, 1.0f)) {}

  std::string type() const override { return "batchnorm2d"; }
  Shape output_shape(const Shape& input) const override { return input; }

  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    Tensor y = new_like(x);
    if (step.mode != Mode::Train) {
      ops::batch_norm2d_forward_eval(x, gamma_.value, beta_.value, eps_, running_mean_,
                                     running_var_, y);
      return y;
    }
    ops::BatchNormState state{Tensor::empty({channels_}, DType::F32, x.device()),
                              Tensor::empty({channels_}, DType::F32, x.device())};
    ops::batch_norm2d_forward_train(x, gamma_.value, beta_.value, eps_, momentum_, running_mean_,
                                    running_var_, y, state);
    saved.tensors = {x, state.mean, state.inv_std};
    return y;
  }
  Tensor backward(const Tensor& dy, Saved& saved, bool, const LayerDone&) override {
    const Tensor& x = saved.tensors.at(0);
    const ops::BatchNormState state{saved.tensors.at(1), saved.tensors.at(2)};
    Tensor dx = new_like(x);
    ops::batch_norm2d_backward(x, gamma_.value, state, dy, dx, gamma_.grad, beta_.grad);
    return dx;
  }
  void collect_parameters(std::vector<Parameter*>& out) override {
    out.push_back(&gamma_);
    out.push_back(&beta_);
  }
  void collect_buffers(std::vector<std::pair<std::string, Tensor*>>& out) override {
    out.emplace_back(prefix_ + "running_mean", &running_mean_);
    out.emplace_back(prefix_ + "running_var", &running_var_);
  }
  nlohmann::json config() const override {
    return {{"batchnorm2d", {{"eps", eps_}, {"momentum", momentum_}}}};
  }
  // BatchNormalization with the running mean and variance (eval mode).
  std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const override {
    return graph.add(
        "BatchNormalization", graph.id(),
        {input, graph.initializer(gamma_.name), graph.initializer(beta_.name),
         graph.initializer(prefix_ + "running_mean"), graph.initializer(prefix_ + "running_var")},
        {{"epsilon", eps_}});
  }

 private:
  std::int64_t channels_;
  float eps_, momentum_;
  Parameter gamma_, beta_;
  std::string prefix_;
  Tensor running_mean_, running_var_;
};

class LayerNorm final : public Layer {
 public:
  LayerNorm(LayerBuilder& builder, std::int64_t features, float eps)
      : features_(features),
        eps_(eps),
        gamma_(make_parameter(builder, "weight", features, 1.0f)),
        beta_(make_parameter(builder, "bias", features, 0.0f)) {}

  std::string type() const override { return "layernorm"; }
  Shape output_shape(const Shape& input) const override { return input; }

  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    const std::int64_t rows = x.numel() / features_;
    Tensor y = new_like(x);
    Tensor mean = Tensor::empty({rows}, DType::F32, x.device());
    Tensor inv_std = Tensor::empty({rows}, DType::F32, x.device());
    ops::layer_norm_forward(x, gamma_.value, beta_.value, eps_, y, mean, inv_std);
    if (step.mode == Mode::Train) saved.tensors = {x, mean, inv_std};
    return y;
  }
  Tensor backward(const Tensor& dy, Saved& saved, bool, const LayerDone&) override {
    const Tensor& x = saved.tensors.at(0);
    Tensor dx = new_like(x);
    ops::layer_norm_backward(x, gamma_.value, saved.tensors.at(1), saved.tensors.at(2), dy, dx,
                             gamma_.grad, beta_.grad);
    return dx;
  }
  void collect_parameters(std::vector<Parameter*>& out) override {
    out.push_back(&gamma_);
    out.push_back(&beta_);
  }
  nlohmann::json config() const override { return {{"layernorm", {{"eps", eps_}}}}; }
  // LayerNormalization over the last axis.
  std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const override {
    return graph.add("LayerNormalization", graph.id(),
                     {input, graph.initializer(gamma_.name), graph.initializer(beta_.name)},
                     {{"axis", std::int64_t{-1}}, {"epsilon", eps_}});
  }

 private:
  std::int64_t features_;
  float eps_;
  Parameter gamma_, beta_;
};

}  // namespace

extern const LayerType kBatchNorm2dLayer{
    "batchnorm2d", "eps (1e-5), momentum (0.1)",
    [](LayerSettings& settings, LayerBuilder& builder, const Shape& input,
       const std::string& where) -> std::unique_ptr<Layer> {
      const auto eps = static_cast<float>(settings.number("eps", 1e-5, 1e-12, 1.0));
      const auto momentum = static_cast<float>(settings.number("momentum", 0.1, 0.0, 1.0));
      settings.finish();
      if (input.size() != 3)
        spec_error(where, "batchnorm2d",
                   "needs a [channels, height, width] input, got " + shape_string(input));
      return std::make_unique<BatchNorm2d>(builder, input[0], eps, momentum);
    }};

extern const LayerType kLayerNormLayer{
    "layernorm", "eps (1e-5)",
    [](LayerSettings& settings, LayerBuilder& builder, const Shape& input,
       const std::string& where) -> std::unique_ptr<Layer> {
      const auto eps = static_cast<float>(settings.number("eps", 1e-5, 1e-12, 1.0));
      settings.finish();
      if (input.empty()) spec_error(where, "layernorm", "needs an input with at least one axis");
      return std::make_unique<LayerNorm>(builder, input.back(), eps);
    }};

}  // namespace kiln::nn
