#include <kiln/error.h>
#include <kiln/nn/mlp.h>
#include <kiln/nn/rng.h>

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <utility>

#include "nn/mlp_layout.h"

namespace kiln::nn {
namespace {

// OpenBLAS takes int dimensions; every width and the batch must fit one.
constexpr std::int64_t kMaxDimension = INT_MAX;

std::int64_t positive_width(const nlohmann::json& json, const char* key) {
  const auto it = json.find(key);
  if (it == json.end()) throw DataError(std::string("model spec: missing \"") + key + "\"");
  return parse_width(*it, key);
}

void check_spec(const MlpSpec& spec) {
  auto check = [](std::int64_t width, const std::string& what) {
    if (width < 1 || width > kMaxDimension)
      throw ConfigError("MLP " + what + " width " + std::to_string(width) +
                        " must lie in [1, 2^31 - 1]");
  };
  check(spec.inputs, "input");
  for (std::size_t i = 0; i < spec.hidden.size(); ++i)
    check(spec.hidden[i], "hidden layer " + std::to_string(i));
  check(spec.outputs, "output");
}

void check_batch(std::int64_t batch, const void* data, const char* what) {
  if (batch < 0 || batch > kMaxDimension)
    throw InternalError(std::string("MLP ") + what + ": batch " + std::to_string(batch) +
                        " outside [0, 2^31 - 1]");
  if (batch > 0 && data == nullptr)
    throw InternalError(std::string("MLP ") + what + ": null data for a batch of " +
                        std::to_string(batch));
}

// The parameter vectors are public; a caller that resized one would make the GEMMs
// read out of bounds.
void check_parameters(const std::vector<Parameter>& parameters) {
  for (const Parameter& p : parameters) {
    std::int64_t count = 1;
    for (const std::int64_t d : p.shape) count *= d;
    if (p.value.size() != static_cast<std::size_t>(count))
      throw InternalError("MLP parameter " + p.name + " holds " + std::to_string(p.value.size()) +
                          " values, its shape needs " + std::to_string(count));
  }
}

// y[batch, out] = x[batch, in] W[out, in]^T + b, then ReLU when `relu`.
void linear_forward(const float* x, std::int64_t batch, const Parameter& weight,
                    const Parameter& bias, bool relu, float* y) {
  const auto out = static_cast<int>(weight.shape[0]);
  const auto in = static_cast<int>(weight.shape[1]);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(batch), out, in, 1.0f, x,
              in, weight.value.data(), in, 0.0f, y, out);
  const float* b = bias.value.data();
  for (std::int64_t row = 0; row < batch; ++row) {
    float* y_row = y + row * out;
    if (relu) {
      for (int o = 0; o < out; ++o) y_row[o] = std::max(y_row[o] + b[o], 0.0f);
    } else {
      for (int o = 0; o < out; ++o) y_row[o] += b[o];
    }
  }
}

// dW = dY^T X and db = column sums of dY, for dY [batch, out] and X [batch, in].
void linear_parameter_grads(const float* dy, const float* x, std::int64_t batch, Parameter& weight,
                            Parameter& bias) {
  const auto out = static_cast<int>(weight.shape[0]);
  const auto in = static_cast<int>(weight.shape[1]);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, static_cast<int>(batch), 1.0f, dy,
              out, x, in, 0.0f, weight.grad.data(), in);
  float* db = bias.grad.data();
  std::fill(db, db + out, 0.0f);
  for (std::int64_t row = 0; row < batch; ++row) {
    const float* dy_row = dy + row * out;
    for (int o = 0; o < out; ++o) db[o] += dy_row[o];
  }
}

// dX[batch, in] = dY[batch, out] W[out, in].
void linear_input_grad(const float* dy, std::int64_t batch, const Parameter& weight, float* dx) {
  const auto out = static_cast<int>(weight.shape[0]);
  const auto in = static_cast<int>(weight.shape[1]);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(batch), in, out, 1.0f, dy,
              out, weight.value.data(), in, 0.0f, dx, in);
}

}  // namespace

std::int64_t parse_width(const nlohmann::json& value, const std::string& what) {
  // nlohmann stores non-negative integers as unsigned and negative ones as signed.
  std::int64_t width = 0;
  if (value.is_number_unsigned()) {
    width =
        static_cast<std::int64_t>(std::min<std::uint64_t>(value.get<std::uint64_t>(), INT64_MAX));
  } else if (value.is_number_integer()) {
    width = value.get<std::int64_t>();
  } else {
    throw DataError("model spec: \"" + what + "\" must be an integer, got " + value.dump());
  }
  if (width < 1 || width > kMaxDimension)
    throw DataError("model spec: \"" + what + "\" must lie in [1, 2^31 - 1], got " + value.dump());
  return width;
}

std::vector<LayerShape> layer_shapes(const MlpSpec& spec) {
  std::vector<std::int64_t> widths{spec.inputs};
  widths.insert(widths.end(), spec.hidden.begin(), spec.hidden.end());
  widths.push_back(spec.outputs);
  std::vector<LayerShape> layers;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const std::string prefix = "layers." + std::to_string(l);
    layers.push_back({prefix + ".weight", prefix + ".bias", widths[l], widths[l + 1]});
  }
  return layers;
}

nlohmann::json MlpSpec::to_json() const {
  return {{"type", "mlp"}, {"inputs", inputs}, {"hidden", hidden}, {"outputs", outputs}};
}

MlpSpec MlpSpec::from_json(const nlohmann::json& json) {
  if (!json.is_object()) throw DataError("model spec must be a JSON object, got " + json.dump());
  for (const auto& [key, value] : json.items()) {
    if (key != "type" && key != "inputs" && key != "hidden" && key != "outputs")
      throw DataError("model spec: unknown key \"" + key +
                      "\" (known: type, inputs, hidden, outputs)");
    if (key == "type" && value != "mlp")
      throw DataError("model spec: \"type\" must be \"mlp\", got " + value.dump());
  }
  MlpSpec spec;
  spec.inputs = positive_width(json, "inputs");
  spec.outputs = positive_width(json, "outputs");
  if (const auto hidden = json.find("hidden"); hidden != json.end()) {
    if (!hidden->is_array())
      throw DataError("model spec: \"hidden\" must be an array, got " + hidden->dump());
    for (std::size_t i = 0; i < hidden->size(); ++i)
      spec.hidden.push_back(parse_width((*hidden)[i], "hidden[" + std::to_string(i) + "]"));
  }
  return spec;
}

Mlp::Mlp(MlpSpec spec, std::uint64_t seed) : spec_(std::move(spec)) {
  check_spec(spec_);
  std::uint64_t index = 0;  // running element index over all parameters: layout-stable init
  auto init = [&](Parameter& p, std::int64_t fan_in) {
    const auto bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)));
    for (float& v : p.value) v = (2.0f * uniform01(seed, RngStream::Init, index++) - 1.0f) * bound;
    p.grad.assign(p.value.size(), 0.0f);
  };
  for (const LayerShape& layer : layer_shapes(spec_)) {
    Parameter weight{layer.weight_name, {layer.out, layer.in}, {}, {}};
    weight.value.resize(static_cast<std::size_t>(layer.out * layer.in));
    init(weight, layer.in);
    Parameter bias{layer.bias_name, {layer.out}, {}, {}};
    bias.value.resize(static_cast<std::size_t>(layer.out));
    init(bias, layer.in);
    parameters_.push_back(std::move(weight));
    parameters_.push_back(std::move(bias));
  }
}

Mlp::Context Mlp::forward(const float* x, std::int64_t batch) const {
  check_batch(batch, x, "forward");
  check_parameters(parameters_);
  const std::size_t layers = parameters_.size() / 2;
  Context context;
  context.batch = batch;
  context.input = x;
  context.outputs.resize(layers);
  const float* input = x;
  for (std::size_t l = 0; l < layers; ++l) {
    const Parameter& weight = parameters_[2 * l];
    std::vector<float>& output = context.outputs[l];
    output.resize(static_cast<std::size_t>(batch * weight.shape[0]));
    if (batch > 0)
      linear_forward(input, batch, weight, parameters_[2 * l + 1], l + 1 < layers, output.data());
    input = output.data();
  }
  return context;
}

void Mlp::backward(const Context& context, const float* dlogits) {
  backward(context, dlogits, nullptr);
}

void Mlp::backward(const Context& context, const float* dlogits, float* dinput) {
  const std::int64_t batch = context.batch;
  check_batch(batch, dlogits, "backward");
  check_batch(batch, context.input, "backward input");
  check_parameters(parameters_);
  const std::size_t layers = parameters_.size() / 2;
  if (context.outputs.size() != layers)
    throw InternalError("MLP backward: context has " + std::to_string(context.outputs.size()) +
                        " layer outputs, the model " + std::to_string(layers) + " layers");
  for (std::size_t l = 0; l < layers; ++l) {
    const auto expected = static_cast<std::size_t>(batch * parameters_[2 * l].shape[0]);
    if (context.outputs[l].size() != expected)
      throw InternalError("MLP backward: layer " + std::to_string(l) + " output has " +
                          std::to_string(context.outputs[l].size()) + " values, expected " +
                          std::to_string(expected));
  }
  if (batch == 0) {
    for (Parameter& p : parameters_) p.grad.assign(p.value.size(), 0.0f);
    return;
  }
  for (Parameter& p : parameters_) p.grad.resize(p.value.size());  // overwritten below

  std::vector<float> delta(dlogits, dlogits + batch * spec_.outputs);
  std::vector<float> delta_below;
  for (std::size_t l = layers; l-- > 0;) {
    Parameter& weight = parameters_[2 * l];
    const float* x = l == 0 ? context.input : context.outputs[l - 1].data();
    linear_parameter_grads(delta.data(), x, batch, weight, parameters_[2 * l + 1]);
    if (l == 0) {
      if (dinput != nullptr) linear_input_grad(delta.data(), batch, weight, dinput);
      break;
    }
    delta_below.resize(static_cast<std::size_t>(batch * weight.shape[1]));
    linear_input_grad(delta.data(), batch, weight, delta_below.data());
    // ReLU: the saved output is positive exactly where the unit was active.
    for (std::size_t k = 0; k < delta_below.size(); ++k)
      delta_below[k] = x[k] > 0.0f ? delta_below[k] : 0.0f;
    std::swap(delta, delta_below);
  }
}

}  // namespace kiln::nn
