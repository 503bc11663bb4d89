// Private to the nn area: the layer interface behind Model, and what building a
// layer from its spec needs.
#pragma once

#include <kiln/nn/model.h>

#include "ops/precision.h"

#include <functional>
#include <string>
#include <vector>

namespace kiln::onnx {
class GraphWriter;
}

namespace kiln::nn {

// What one layer's forward kept for its backward.
struct Saved {
  std::vector<Tensor> tensors;
  std::vector<std::unique_ptr<Saved>> children;  // for containers
  Precision precision = Precision::F32;          // of the forward pass, for its backward
};

// The ops' name for a step's precision.
inline ops::MathPrecision math_of(Precision precision) {
  return precision == Precision::BF16 ? ops::MathPrecision::BF16 : ops::MathPrecision::F32;
}

// Told after each leaf layer's backward, so the model can release gradient buckets.
using LayerDone = std::function<void(Layer&)>;

class Layer {
 public:
  virtual ~Layer();
  virtual std::string type() const = 0;
  // Per-sample output shape for a per-sample input shape.
  virtual Shape output_shape(const Shape& input) const = 0;
  virtual Tensor forward(const Tensor& x, const StepInfo& step, Saved& saved) = 0;
  // Returns dx (undefined when !need_input_grad); adds to parameter gradients.
  virtual Tensor backward(const Tensor& dy, Saved& saved, bool need_input_grad,
                          const LayerDone& done) = 0;
  // Parameters (and buffers) of this layer and those inside it; their names were
  // given at build time ("layers.3.weight").
  virtual void collect_parameters(std::vector<Parameter*>& out);
  virtual void collect_buffers(std::vector<std::pair<std::string, Tensor*>>& out);
  // Zeroes the gradients of the parameters here and inside. With `in_backward`, a
  // layer may instead write them in its next backward pass rather than add to
  // them (Model::zero_grad_before_backward); the default zeroes them now.
  virtual void zero_grad(bool in_backward);
  // The layer's settings with defaults filled in: {"conv2d": {...}} or "relu".
  virtual nlohmann::json config() const = 0;
  // Rows of Model::summary for this layer (containers list their children).
  virtual void describe(const std::string& prefix, const Shape& input,
                        std::vector<std::string>& lines) const;
  // The layer in eval mode as ONNX nodes reading the value `input`; returns the
  // value it outputs (onnx/graph_writer.h). The default refuses: ConfigError
  // "onnx export: <layer> (<type>): this layer type has no ONNX export".
  virtual std::string to_onnx(onnx::GraphWriter& graph, const std::string& input) const;

 protected:
  static Tensor new_like(const Tensor& x) {
    return Tensor::empty(x.shape(), x.dtype(), x.device());
  }
};

// How deep lists of layers, blocks and residuals may nest. Real models nest a few
// levels; the limit keeps the builder's recursion far from the stack's end on a
// hostile spec (a stored one nested 100,000 deep overflowed it).
inline constexpr int kMaxLayerDepth = 32;

// Builds layers from spec entries; one shared state for a whole model.
struct LayerBuilder {
  const nlohmann::json* blocks = nullptr;  // the spec's "blocks" mapping
  std::uint64_t seed = 0;
  Device device;
  std::uint64_t init_offset = 0;  // Philox index of the next parameter element
  std::uint32_t dropout_layers = 0;
  int block_depth = 0;
  int depth = 0;                   // lists of layers open around the one being built
  std::string prefix = "layers.";  // name prefix of the layer being built

  // `entry` is one element of a layers list; `where` names it for errors
  // ("layers[3]"); `input` is the per-sample input shape.
  std::unique_ptr<Layer> build(const nlohmann::json& entry, const std::string& where,
                               const Shape& input);
  std::unique_ptr<Layer> build_sequence(const nlohmann::json& list, const std::string& where,
                                        const Shape& input);
  // A parameter tensor ~ U(-bound, bound) from the Init stream, or filled with `value`.
  Tensor uniform(const Shape& shape, float bound);
  Tensor constant(const Shape& shape, float value);
};

// ConfigError "<where> (<type>): <problem>".
[[noreturn]] void spec_error(const std::string& where, const std::string& type,
                             const std::string& problem);

// Settings of one layer entry: reads integers/floats/bools with defaults and refuses
// unknown keys (with "did you mean").
class LayerSettings {
 public:
  LayerSettings(const nlohmann::json& settings, std::string where, std::string type);
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t minimum);
  std::int64_t required_integer(const std::string& key, std::int64_t minimum);
  double number(const std::string& key, double fallback, double minimum, double maximum);
  bool flag(const std::string& key, bool fallback);
  // After all reads: ConfigError for any key that was not read.
  void finish() const;

 private:
  const nlohmann::json& value(const std::string& key);
  nlohmann::json settings_;
  std::string where_, type_;
  std::vector<std::string> known_;
};

// One layer type, declared next to its class (nn/layers_*.cpp) and listed once in
// nn/layer_factory.cpp: its name in a spec, its settings (the schema, as the error
// for an unknown setting lists it; empty for a type that takes none: "relu", not
// {"relu": {...}}), and how to build it. `build` reads the settings through
// LayerSettings, which refuses unknown keys, and checks the input shape.
struct LayerType {
  const char* name;
  const char* settings;
  std::unique_ptr<Layer> (*build)(LayerSettings& settings, LayerBuilder& builder,
                                  const Shape& input, const std::string& where);
};

// Containers, for the factory's block and residual logic.
std::unique_ptr<Layer> make_sequential(std::vector<std::unique_ptr<Layer>> layers,
                                       std::vector<Shape> inputs, std::string type);
std::unique_ptr<Layer> make_residual(std::unique_ptr<Layer> body, const Shape& input,
                                     const std::string& where);

}  // namespace kiln::nn
