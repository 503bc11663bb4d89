// Models: a stack of layers declared as data (the pipeline's `model:` block),
// float32, on the CPU (and on CUDA devices once the CUDA backend is built). A
// forward pass returns what backward needs in a ForwardContext, so layers hold
// only parameters; backward accumulates parameter gradients (micro-batches add up)
// and reports each bucket of parameters whose gradients are complete, which is
// where a data-parallel all-reduce starts.
//
// Spec (JSON, from YAML):
//   {"input": [1, 28, 28],
//    "layers": ["flatten", {"linear": {"out": 128}}, "relu", ...],
//    "blocks": {"name": [layers...]}}     // optional, used as {"block": "name"}
// Layer types and their settings: the list in engine/src/nn/layer_factory.cpp, plus
// residual [layers] or {block: name} and block: name.
#pragma once

#include <kiln/tensor/tensor.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln::nn {

struct Parameter {
  std::string name;  // "layers.3.weight"
  Tensor value;
  Tensor grad;  // same shape; zeroed by Model::zero_grad
};

enum class Mode { Train, Eval };

// What a forward pass needs besides the input: the mode, and the address of its
// random numbers (dropout masks depend on seed and step only, on any device).
// Arithmetic of the matrix products (linear, convolution): float32 throughout, or
// bf16 inputs with float32 accumulation and float32 master weights (autocast, on
// CUDA devices; the CPU computes float32 either way).
enum class Precision { F32, BF16 };

struct StepInfo {
  Mode mode = Mode::Eval;
  std::uint64_t seed = 0;
  std::int64_t step = 0;
  Precision precision = Precision::F32;
};

class Layer;
struct Saved;

// What forward kept for backward; owned by the caller, consumed by backward.
class ForwardContext {
 public:
  ForwardContext();
  ~ForwardContext();
  ForwardContext(ForwardContext&&) noexcept;
  ForwardContext& operator=(ForwardContext&&) noexcept;

 private:
  friend class Model;
  std::vector<std::unique_ptr<Saved>> saved_;
  bool training_ = false;
};

// Parameters whose gradients become final together during backward, last layer
// first; about `bucket_bytes` each.
struct GradientBucket {
  int index = 0;
  std::vector<Parameter*> parameters;
};

class Model {
 public:
  // ConfigError naming the layer ("layers[3] (conv2d): kernel must be >= 1") for a
  // bad spec. Parameters: torch's defaults (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
  // linear and conv weights and biases, 1 and 0 for norm scales and shifts), drawn
  // from the Philox Init stream of `seed`.
  static Model build(const nlohmann::json& spec, std::uint64_t seed, Device device = Device::cpu());
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  // The spec with every default filled in, as saved with the weights.
  const nlohmann::json& spec() const noexcept { return spec_; }
  const Shape& input_shape() const noexcept { return input_shape_; }    // per sample
  const Shape& output_shape() const noexcept { return output_shape_; }  // per sample
  Device device() const noexcept { return device_; }
  std::vector<Parameter*> parameters();
  // Non-trained state saved with the weights (batch-norm running statistics).
  std::vector<std::pair<std::string, Tensor*>> buffers();
  std::int64_t parameter_count();
  // One line per layer: index, type, output shape, parameters.
  std::string summary() const;
  // The built layers, one sequence (engine-private type), for walkers such as the
  // ONNX exporter.
  const Layer& root_layer() const noexcept;

  // x: [N, input_shape...]. Train mode keeps what backward needs in `context`.
  Tensor forward(const Tensor& x, const StepInfo& step, ForwardContext& context);
  // dy: gradient of the loss w.r.t. the output. Adds to every parameter's grad.
  // Returns the gradient w.r.t. the input when `input_grad` (else an undefined tensor).
  Tensor backward(ForwardContext& context, const Tensor& dy, bool input_grad = false);
  void zero_grad();
  // zero_grad for a step whose backward pass comes next, with the same result:
  // layers that can (linear) write their gradients in that pass instead of adding
  // to zeroed memory; the others are zeroed now. Gradients read before that pass
  // are not zero: use zero_grad there.
  void zero_grad_before_backward();

  // Called during backward for each bucket whose gradients are complete.
  void set_gradient_hook(std::function<void(const GradientBucket&)> hook,
                         std::size_t bucket_bytes = 25u << 20);
  // The buckets set_gradient_hook made (a rank with no rows in a step reports them
  // all without a backward pass).
  const std::vector<GradientBucket>& gradient_buckets() const noexcept { return buckets_; }

  // safetensors: parameters and buffers by name, the spec in the metadata under
  // "kiln.model", plus `metadata`.
  void save(const std::filesystem::path& path,
            const std::map<std::string, std::string>& metadata = {}) const;
  // DataError naming the file for a missing or malformed spec, missing tensors or
  // shapes that differ from the spec.
  // `metadata`, when given, receives the file's metadata.
  static Model load(const std::filesystem::path& path, Device device = Device::cpu(),
                    std::map<std::string, std::string>* metadata = nullptr);

 private:
  Model();
  void build_buckets(std::size_t bucket_bytes);

  nlohmann::json spec_;
  Shape input_shape_, output_shape_;
  Device device_;
  std::unique_ptr<Layer> root_;
  std::function<void(const GradientBucket&)> hook_;
  std::vector<GradientBucket> buckets_;
  std::map<const Parameter*, int> bucket_of_;
};

}  // namespace kiln::nn
