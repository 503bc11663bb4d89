// A multi-layer perceptron on the CPU: Linear -> ReLU -> ... -> Linear, float32,
// GEMMs through OpenBLAS. forward() returns a context holding what backward()
// needs, so the model itself holds only parameters and gradients. This is the
// quickstart's model; the general layer stack of the training core replaces it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln::nn {

struct MlpSpec {
  std::int64_t inputs = 0;
  std::vector<std::int64_t> hidden;  // widths of the hidden layers, each followed by ReLU
  std::int64_t outputs = 0;

  nlohmann::json to_json() const;  // {"type":"mlp","inputs":..,"hidden":[..],"outputs":..}
  static MlpSpec from_json(const nlohmann::json& json);  // DataError on a malformed spec
};

// A trainable tensor: float32 values and their gradient, C order.
struct Parameter {
  std::string name;                 // "layers.0.weight", "layers.0.bias", ...
  std::vector<std::int64_t> shape;  // weight: [out, in] (as torch.nn.Linear); bias: [out]
  std::vector<float> value;
  std::vector<float> grad;
};

class Mlp {
 public:
  // What forward keeps for backward: the input and every layer's output.
  struct Context {
    std::int64_t batch = 0;
    const float* input = nullptr;             // not owned; must outlive backward()
    std::vector<std::vector<float>> outputs;  // per Linear layer, after its ReLU if any
    const std::vector<float>& logits() const { return outputs.back(); }
  };

  // Weights and biases ~ U(-1/sqrt(in), 1/sqrt(in)) (torch.nn.Linear's default),
  // drawn from the Init stream of `seed`: element k of the parameters laid end to
  // end in order (layers.0.weight, layers.0.bias, layers.1.weight, ...) is
  // (2 * uniform01(seed, Init, k) - 1) / sqrt(in). A widths/spec error is a ConfigError.
  Mlp(MlpSpec spec, std::uint64_t seed);

  const MlpSpec& spec() const noexcept { return spec_; }
  std::vector<Parameter>& parameters() noexcept { return parameters_; }
  const std::vector<Parameter>& parameters() const noexcept { return parameters_; }

  // x: [batch, inputs], row-major.
  Context forward(const float* x, std::int64_t batch) const;
  // Sets (not accumulates) every parameter's grad from dlogits [batch, outputs].
  void backward(const Context& context, const float* dlogits);
  // The same, and writes d(loss)/d(input) [batch, inputs] to dinput unless it is
  // null (the plain overload skips that GEMM, which is the largest of the step).
  void backward(const Context& context, const float* dlogits, float* dinput);

  // safetensors with the spec in the metadata under "kiln.model".
  void save(const std::filesystem::path& path,
            const std::map<std::string, std::string>& metadata = {}) const;
  static Mlp load(const std::filesystem::path& path);

 private:
  MlpSpec spec_;
  std::vector<Parameter> parameters_;
};

// Mean softmax cross-entropy over the batch, with label smoothing eps (target
// 1-eps on the label, eps/classes spread over all). Writes dlogits = d(loss)/d(logits)
// when dlogits is not null. labels must lie in [0, classes).
double softmax_cross_entropy(const float* logits, const std::int32_t* labels, std::int64_t batch,
                             std::int64_t classes, float* dlogits, double label_smoothing = 0.0);

}  // namespace kiln::nn
