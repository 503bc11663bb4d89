// Containers: a sequence of layers, and a residual block y = x + body(x).
#include <kiln/error.h>

#include <fmt/format.h>

#include "nn/layer.h"
#include "onnx/graph_writer.h"
#include "ops/activation.h"

namespace kiln::nn {

Layer::~Layer() = default;
void Layer::collect_parameters(std::vector<Parameter*>&) {}
void Layer::collect_buffers(std::vector<std::pair<std::string, Tensor*>>&) {}
void Layer::zero_grad(bool) {
  std::vector<Parameter*> parameters;
  collect_parameters(parameters);
  for (Parameter* p : parameters) p->grad.zero();
}

void Layer::describe(const std::string& prefix, const Shape& input,
                     std::vector<std::string>& lines) const {
  std::vector<Parameter*> parameters;
  const_cast<Layer*>(this)->collect_parameters(parameters);
  std::int64_t count = 0;
  for (const Parameter* p : parameters) count += p->value.numel();
  lines.push_back(fmt::format("{:<14} {:<14} {:<18} {}", prefix, type(),
                              shape_string(output_shape(input)), count));
}

std::string Layer::to_onnx(onnx::GraphWriter& graph, const std::string&) const {
  throw ConfigError(
      fmt::format("onnx export: {} ({}): this layer type has no ONNX export", graph.id(), type()));
}

namespace {

class Sequential final : public Layer {
 public:
  Sequential(std::vector<std::unique_ptr<Layer>> layers, std::vector<Shape> inputs,
             std::string type)
      : layers_(std::move(layers)), inputs_(std::move(inputs)), type_(std::move(type)) {
    bool learns = false;
    for (const auto& layer : layers_) {
      learns_before_.push_back(learns);
      std::vector<Parameter*> parameters;
      layer->collect_parameters(parameters);
      learns = learns || !parameters.empty();
    }
  }

  std::string type() const override { return type_; }
  Shape output_shape(const Shape& input) const override {
    return layers_.empty() ? input : layers_.back()->output_shape(inputs_.back());
  }

  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    Tensor value = x;
    saved.children.clear();
    for (auto& layer : layers_) {
      auto child = std::make_unique<Saved>();
      value = layer->forward(value, step, *child);
      saved.children.push_back(std::move(child));
    }
    return value;
  }

  Tensor backward(const Tensor& dy, Saved& saved, bool need_input_grad,
                  const LayerDone& done) override {
    Tensor grad = dy;
    for (std::size_t i = layers_.size(); i-- > 0;) {
      // Below the first layer that learns, nothing needs a gradient unless the
      // caller does: that layer skips its input gradient (the MLP's first linear
      // layer, behind a flatten, would otherwise compute a 128 x 784 one every
      // step), and the layers before it do not run backward at all.
      const bool input_grad = need_input_grad || learns_before_[i];
      grad = layers_[i]->backward(grad, *saved.children.at(i), input_grad, done);
      if (done) done(*layers_[i]);
      if (!input_grad) return {};
    }
    return grad;
  }

  void collect_parameters(std::vector<Parameter*>& out) override {
    for (auto& layer : layers_) layer->collect_parameters(out);
  }
  void zero_grad(bool in_backward) override {
    for (auto& layer : layers_) layer->zero_grad(in_backward);
  }
  void collect_buffers(std::vector<std::pair<std::string, Tensor*>>& out) override {
    for (auto& layer : layers_) layer->collect_buffers(out);
  }
  nlohmann::json config() const override {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& layer : layers_) list.push_back(layer->config());
    return list;
  }
  void describe(const std::string& prefix, const Shape&,
                std::vector<std::string>& lines) const override {
    for (std::size_t i = 0; i < layers_.size(); ++i)
      layers_[i]->describe(prefix.empty() ? std::to_string(i) : prefix + "." + std::to_string(i),
                           inputs_[i], lines);
  }
  // A block's layers sit under its index ("layers.3.0").
  std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const override {
    std::string x = input;
    for (std::size_t i = 0; i < layers_.size(); ++i)
      x = graph.write(std::to_string(i), *layers_[i], x);
    return x;
  }

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<Shape> inputs_;        // per-sample input shape of each layer
  std::vector<bool> learns_before_;  // [i]: whether a layer before i has parameters
  std::string type_;
};

class Residual final : public Layer {
 public:
  Residual(std::unique_ptr<Layer> body, Shape input)
      : body_(std::move(body)), input_(std::move(input)) {}
  std::string type() const override { return "residual"; }
  Shape output_shape(const Shape& input) const override { return input; }

  Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) override {
    saved.children.clear();
    saved.children.push_back(std::make_unique<Saved>());
    const Tensor branch = body_->forward(x, step, *saved.children[0]);
    Tensor y = new_like(x);
    ops::add(x, branch, y);
    return y;
  }
  Tensor backward(const Tensor& dy, Saved& saved, bool need_input_grad,
                  const LayerDone& done) override {
    const Tensor branch = body_->backward(dy, *saved.children.at(0), need_input_grad, done);
    if (!need_input_grad) return {};
    Tensor dx = new_like(dy);
    ops::add(dy, branch, dx);
    return dx;
  }
  void collect_parameters(std::vector<Parameter*>& out) override { body_->collect_parameters(out); }
  void zero_grad(bool in_backward) override { body_->zero_grad(in_backward); }
  void collect_buffers(std::vector<std::pair<std::string, Tensor*>>& out) override {
    body_->collect_buffers(out);
  }
  nlohmann::json config() const override { return {{"residual", body_->config()}}; }
  void describe(const std::string& prefix, const Shape& input,
                std::vector<std::string>& lines) const override {
    lines.push_back(fmt::format("{:<14} {:<14} {:<18}", prefix, "residual", shape_string(input)));
    body_->describe(prefix + ".body", input_, lines);
  }
  // Add(x, body(x)).
  std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const override {
    const std::string body = graph.write("body", *body_, input);
    return graph.add("Add", graph.id(), {input, body});
  }

 private:
  std::unique_ptr<Layer> body_;
  Shape input_;
};

}  // namespace

std::unique_ptr<Layer> make_sequential(std::vector<std::unique_ptr<Layer>> layers,
                                       std::vector<Shape> inputs, std::string type) {
  return std::make_unique<Sequential>(std::move(layers), std::move(inputs), std::move(type));
}

std::unique_ptr<Layer> make_residual(std::unique_ptr<Layer> body, const Shape& input,
                                     const std::string& where) {
  const Shape output = body->output_shape(input);
  if (output != input)
    spec_error(where, "residual",
               fmt::format("its body maps {} to {}; a residual block must keep "
                           "the shape",
                           shape_string(input), shape_string(output)));
  return std::make_unique<Residual>(std::move(body), input);
}

}  // namespace kiln::nn
