// Conv2d and the pooling layers (NCHW).
#include <cmath>

#include "nn/layer.h"
#include "onnx/graph_writer.h"
#include "ops/conv.h"
#include "ops/pool.h"

namespace kiln::nn {
namespace {

using Ints = std::vector<std::int64_t>;

void check_image(const Shape& input, const std::string& where, const char* type) {
  if (input.size() != 3)
    spec_error(where, type, "needs a [channels, height, width] input, got " + shape_string(input));
}

// ONNX attributes of a square window with symmetric padding.
std::vector<onnx::proto::Attribute> window(std::int64_t k, std::int64_t s, std::int64_t p) {
  return {{"kernel_shape", Ints{k, k}}, {"strides", Ints{s, s}}, {"pads", Ints{p, p, p, p}}};
}

class Conv2d final : public Layer {
 public:
  Conv2d(LayerBuilder& builder, const Shape& input, ops::Conv2dGeometry geometry, bool bias)
      : g_(geometry) {
    g_.in_channels = input[0];
    g_.height = input[1];
    g_.width = input[2];
    // torch.nn.Conv2d's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C k k.
    const float bound =
        1.0f / std::sqrt(static_cast<float>(g_.in_channels * g_.kernel * g_.kernel));
    const Shape w = g_.weight_shape();
    weight_ = {builder.prefix + "weight", builder.uniform(w, bound),
               Tensor::zeros(w, DType::F32, builder.device)};
    if (bias)
      bias_ = {builder.prefix + "bias", builder.uniform({g_.out_channels}, bound),
               Tensor::zeros({g_.out_channels}, DType::F32, builder.device)};
  }
  std::string type() const override { return "conv2d"; }
  Shape output_shape(const Shape&) const override {
    return {g_.out_channels, g_.out_height(), g_.out_width()};
  }

  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    ops::Conv2dGeometry g = g_;
    g.batch = x.dim(0);
    Tensor y = Tensor::empty(g.output_shape(), DType::F32, x.device());
    ops::conv2d_forward(g, x, weight_.value, bias_.value, y, math_of(step.precision));
    if (step.mode == Mode::Train) {
      saved.tensors = {x};
      saved.precision = step.precision;
    }
    return y;
  }
  Tensor backward(const Tensor& dy, Saved& saved, bool need_input_grad, const LayerDone&) override {
    const Tensor& x = saved.tensors.at(0);
    ops::Conv2dGeometry g = g_;
    g.batch = x.dim(0);
    Tensor dx = need_input_grad ? Tensor::empty(x.shape(), DType::F32, x.device()) : Tensor();
    ops::conv2d_backward(g, x, weight_.value, dy, dx, weight_.grad, bias_.grad,
                         math_of(saved.precision));
    return dx;
  }
  void collect_parameters(std::vector<Parameter*>& out) override {
    out.push_back(&weight_);
    if (bias_.value.defined()) out.push_back(&bias_);
  }
  nlohmann::json config() const override {
    return {{"conv2d",
             {{"out", g_.out_channels},
              {"kernel", g_.kernel},
              {"stride", g_.stride},
              {"padding", g_.padding},
              {"bias", bias_.value.defined()}}}};
  }
  std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const override {
    std::vector<std::string> inputs = {input, graph.initializer(weight_.name)};
    if (bias_.value.defined()) inputs.push_back(graph.initializer(bias_.name));
    return graph.add("Conv", graph.id(), inputs, window(g_.kernel, g_.stride, g_.padding));
  }

 private:
  ops::Conv2dGeometry g_;
  Parameter weight_, bias_;
};

class Pool2d final : public Layer {
 public:
  Pool2d(bool max, const Shape& input, std::int64_t kernel, std::int64_t stride,
         std::int64_t padding)
      : max_(max) {
    g_.channels = input[0];
    g_.height = input[1];
    g_.width = input[2];
    g_.kernel = kernel;
    g_.stride = stride;
    g_.padding = padding;
  }
  std::string type() const override { return max_ ? "maxpool2d" : "avgpool2d"; }
  Shape output_shape(const Shape&) const override {
    return {g_.channels, g_.out_height(), g_.out_width()};
  }
  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    ops::Pool2dGeometry g = g_;
    g.batch = x.dim(0);
    Tensor y = Tensor::empty(g.output_shape(), DType::F32, x.device());
    if (max_) {
      Tensor argmax = Tensor::empty(g.output_shape(), DType::I32, x.device());
      ops::max_pool2d_forward(g, x, y, argmax);
      if (step.mode == Mode::Train) saved.tensors = {argmax};
    } else {
      ops::avg_pool2d_forward(g, x, y);
    }
    return y;
  }
  Tensor backward(const Tensor& dy, Saved& saved, bool, const LayerDone&) override {
    ops::Pool2dGeometry g = g_;
    g.batch = dy.dim(0);
    Tensor dx = Tensor::empty(g.input_shape(), DType::F32, dy.device());
    if (max_)
      ops::max_pool2d_backward(g, dy, saved.tensors.at(0), dx);
    else
      ops::avg_pool2d_backward(g, dy, dx);
    return dx;
  }
  nlohmann::json config() const override {
    return {{type(), {{"kernel", g_.kernel}, {"stride", g_.stride}, {"padding", g_.padding}}}};
  }
  // MaxPool: padding never wins, as in kiln (ONNX pads with -inf). AveragePool with
  // count_include_pad = 1: kiln divides by k * k.
  std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const override {
    std::vector<onnx::proto::Attribute> attributes = window(g_.kernel, g_.stride, g_.padding);
    if (!max_) attributes.push_back({"count_include_pad", std::int64_t{1}});
    return graph.add(max_ ? "MaxPool" : "AveragePool", graph.id(), {input}, attributes);
  }

 private:
  bool max_;
  ops::Pool2dGeometry g_;
};

class GlobalAvgPool final : public Layer {
 public:
  std::string type() const override { return "global_avgpool"; }
  Shape output_shape(const Shape& input) const override { return {input[0]}; }
  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    Tensor y = Tensor::empty({x.dim(0), x.dim(1)}, DType::F32, x.device());
    ops::global_avg_pool_forward(x, y);
    if (step.mode == Mode::Train) saved.tensors = {x};  // for its shape
    return y;
  }
  Tensor backward(const Tensor& dy, Saved& saved, bool, const LayerDone&) override {
    Tensor dx = new_like(saved.tensors.at(0));
    ops::global_avg_pool_backward(dy, dx);
    return dx;
  }
  nlohmann::json config() const override { return "global_avgpool"; }
  // GlobalAveragePool, then Flatten ([N, C, 1, 1] -> [N, C]).
  std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const override {
    const std::string pooled = graph.add("GlobalAveragePool", graph.id() + "/pool", {input});
    return graph.add("Flatten", graph.id(), {pooled}, {{"axis", std::int64_t{1}}});
  }
};

std::unique_ptr<Layer> make_pool(bool max, LayerSettings& settings, const Shape& input,
                                 const std::string& where) {
  const char* type = max ? "maxpool2d" : "avgpool2d";
  check_image(input, where, type);
  const std::int64_t kernel = settings.integer("kernel", 2, 1);
  const std::int64_t stride = settings.integer("stride", kernel, 1);
  const std::int64_t padding = settings.integer("padding", 0, 0);
  settings.finish();
  if (2 * padding > kernel) spec_error(where, type, "padding must be at most half the kernel");
  if (input[1] + 2 * padding < kernel || input[2] + 2 * padding < kernel)
    spec_error(where, type, "the kernel is larger than the input " + shape_string(input));
  return std::make_unique<Pool2d>(max, input, kernel, stride, padding);
}

}  // namespace

extern const LayerType kConv2dLayer{
    "conv2d", "out (integer >= 1), kernel (3), stride (1), padding (0), bias (true)",
    [](LayerSettings& settings, LayerBuilder& builder, const Shape& input,
       const std::string& where) -> std::unique_ptr<Layer> {
      check_image(input, where, "conv2d");
      ops::Conv2dGeometry g;
      g.out_channels = settings.required_integer("out", 1);
      g.kernel = settings.integer("kernel", 3, 1);
      g.stride = settings.integer("stride", 1, 1);
      g.padding = settings.integer("padding", 0, 0);
      const bool bias = settings.flag("bias", true);
      settings.finish();
      if (input[1] + 2 * g.padding < g.kernel || input[2] + 2 * g.padding < g.kernel)
        spec_error(where, "conv2d",
                   "the kernel is larger than the (padded) input " + shape_string(input));
      return std::make_unique<Conv2d>(builder, input, g, bias);
    }};

extern const LayerType kMaxPool2dLayer{
    "maxpool2d", "kernel (2), stride (kernel), padding (0)",
    [](LayerSettings& settings, LayerBuilder&, const Shape& input, const std::string& where) {
      return make_pool(true, settings, input, where);
    }};

extern const LayerType kAvgPool2dLayer{
    "avgpool2d", "kernel (2), stride (kernel), padding (0)",
    [](LayerSettings& settings, LayerBuilder&, const Shape& input, const std::string& where) {
      return make_pool(false, settings, input, where);
    }};

extern const LayerType kGlobalAvgPoolLayer{"global_avgpool", "",
                                           [](LayerSettings&, LayerBuilder&, const Shape& input,
                                              const std::string& where) -> std::unique_ptr<Layer> {
                                             check_image(input, where, "global_avgpool");
                                             return std::make_unique<GlobalAvgPool>();
                                           }};

}  // namespace kiln::nn
