// A gradient checker in the spirit of Caffe's (test_gradient_check_util.hpp): for a
// fixed random projection R of a model's output, L = sum(out * R) has dL/dout = R,
// so one backward pass with dy = R yields dL/dtheta for every parameter and dL/dx;
// each coordinate is then compared with the central difference
// (L(v + h) - L(v - h)) / (2h) of the forward pass.
//
// kiln's ops are float32 only, so the forward pass being differenced is float32 too;
// L is summed in double. Error budget of the difference quotient, for the default
// h = 1e-2: truncation h^2 |L'''| / 6 ~ 2e-5 for the smooth layers tested here; and
// the float rounding of the k outputs a perturbation changes, ~6e-8 |out| each,
// divided by 2h: ~3e-6 k, at most ~3e-4 for the k ~ 100 outputs that one batch-norm
// input moves. Hence |analytic - numeric| <= 1e-3 + 1e-2 |numeric| (Caffe's float
// checks use steps of 1e-2 and thresholds of 1e-3 to 1e-2). A wrong sign, a
// transposed weight, a missing 1/M or a gradient routed to the wrong element misses
// by far more (GradientChecker.FlagsAGradientFivePercentOff checks the checker).
// Layers with kinks (ReLU at 0, max-pool ties) need inputs at least a step away from
// them; the tests construct such inputs, say how, and take h = 1e-3 there, where the
// few outputs one perturbation moves (k <= 18) keep the rounding term below 6e-4.
#pragma once

#include <kiln/device.h>
#include <kiln/nn/model.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "ops/dispatch.h"

namespace kiln {
// gtest prints a Device parameter as "cpu" / "cuda:0" rather than its bytes.
inline void PrintTo(const Device& device, std::ostream* out) { *out << device.str(); }
}  // namespace kiln

namespace kiln::test {

// The devices a test parametrized over devices runs on: the CPU, and the first CUDA
// device whenever the CUDA backend is built. Without a GPU the CUDA cases are still
// instantiated and skip in SetUp (skip_reason), so that `--gtest_list_tests` names
// them on any machine: tools/gpu-check.sh selects GPU cases by name, and
// tests/gpu_check checks that selection against these names.
inline std::vector<Device> devices_under_test() {
  std::vector<Device> devices{Device::cpu()};
  if (ops::kCudaBuilt) devices.push_back(Device::cuda(0));
  return devices;
}

// Why a test on `device` cannot run here, or "" when it can.
inline std::string skip_reason(const Device& device) {
  if (device.is_cpu()) return "";
  const std::size_t present = probe_devices().devices.size();
  if (static_cast<std::size_t>(device.index) < present) return "";
  return "no CUDA device " + device.str() + " here (" + std::to_string(present) + " present)";
}

inline std::string device_test_name(const ::testing::TestParamInfo<Device>& info) {
  return info.param.is_cpu() ? "cpu" : "cuda" + std::to_string(info.param.index);
}

// Uniform values in [low, high) from the Augment stream of `seed` (CPU, float32).
inline Tensor random_tensor(const Shape& shape, std::uint64_t seed, float low = -1.0f,
                            float high = 1.0f) {
  std::vector<float> values(static_cast<std::size_t>(shape_elements(shape)));
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = low + (high - low) * nn::uniform01(seed, nn::RngStream::Augment, i);
  return Tensor::from(std::move(values), shape);
}

inline std::vector<float> host_values(const Tensor& tensor) {
  return tensor.device().is_cpu() ? tensor.to_vector() : tensor.to(Device::cpu()).to_vector();
}

inline void set_values(Tensor& tensor, std::vector<float> values) {
  tensor.copy_from(Tensor::from(std::move(values), tensor.shape()).to(tensor.device()));
}

// A model from a layer list (and optional named blocks) for a per-sample input shape.
inline nn::Model build_model(const nlohmann::json& layers, const Shape& input, Device device,
                             std::uint64_t seed = 3, const nlohmann::json& blocks = nullptr) {
  nlohmann::json spec{{"input", input}, {"layers", layers}};
  if (!blocks.is_null()) spec["blocks"] = blocks;
  return nn::Model::build(spec, seed, device);
}

struct GradientCheck {
  double step = 1e-2;
  double absolute = 1e-3;
  double relative = 1e-2;
  std::int64_t max_coordinates = 512;         // per tensor; beyond that a fixed random sample
  nn::StepInfo info{nn::Mode::Train, 11, 5};  // dropout masks depend on (seed, step) only
  std::uint64_t projection_seed = 101;
};

namespace detail {

inline double projected_output(nn::Model& model, const Tensor& x,
                               const std::vector<float>& projection, const nn::StepInfo& info) {
  nn::ForwardContext context;
  const std::vector<float> out = host_values(model.forward(x, info, context));
  double sum = 0.0;
  for (std::size_t i = 0; i < out.size(); ++i) sum += static_cast<double>(out[i]) * projection[i];
  return sum;
}

inline std::vector<std::int64_t> coordinates(std::int64_t n, std::int64_t max) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(n));
  std::iota(all.begin(), all.end(), std::int64_t{0});
  if (n <= max) return all;
  std::set<std::int64_t> sample{0, n - 1};
  for (std::uint64_t k = 0; static_cast<std::int64_t>(sample.size()) < max; ++k)
    sample.insert(static_cast<std::int64_t>(
        nn::uniform_below(77, nn::RngStream::Augment, k, static_cast<std::uint64_t>(n))));
  return {sample.begin(), sample.end()};
}

struct Target {
  std::string name;
  Tensor* value;
  std::vector<float> analytic;
};

// Central difference of L in element i of `target`, over the steps actually taken
// after rounding v +- h to float.
inline double numeric_derivative(nn::Model& model, const Tensor& x, Tensor& target, std::int64_t i,
                                 const std::vector<float>& projection, const GradientCheck& check) {
  std::vector<float> values = host_values(target);
  const float original = values[static_cast<std::size_t>(i)];
  const auto plus = static_cast<float>(original + check.step);
  const auto minus = static_cast<float>(original - check.step);
  auto loss_at = [&](float v) {
    values[static_cast<std::size_t>(i)] = v;
    set_values(target, values);
    return projected_output(model, x, projection, check.info);
  };
  const double up = loss_at(plus), down = loss_at(minus);
  values[static_cast<std::size_t>(i)] = original;
  set_values(target, values);
  return (up - down) / (static_cast<double>(plus) - static_cast<double>(minus));
}

inline void compare(nn::Model& model, const Tensor& x, Target& target,
                    const std::vector<float>& projection, const GradientCheck& check) {
  double largest = 0.0;
  for (const std::int64_t i : coordinates(target.value->numel(), check.max_coordinates)) {
    const double numeric = numeric_derivative(model, x, *target.value, i, projection, check);
    const double analytic = target.analytic[static_cast<std::size_t>(i)];
    largest = std::max(largest, std::abs(numeric));
    EXPECT_NEAR(analytic, numeric, check.absolute + check.relative * std::abs(numeric))
        << target.name << "[" << i << "]";
  }
  // A check of gradients that are all zero would prove nothing.
  EXPECT_GT(largest, 10 * check.absolute) << target.name << ": every gradient is ~0";
}

}  // namespace detail

// Checks every parameter gradient and the input gradient of `model` at input `x`
// against finite differences (gtest failures name the tensor and the coordinate).
inline void check_gradients(nn::Model& model, const Tensor& x, const GradientCheck& check = {}) {
  Tensor input = x.to(model.device());
  nn::ForwardContext context;
  const Tensor y = model.forward(input, check.info, context);
  const std::vector<float> projection =
      host_values(random_tensor(y.shape(), check.projection_seed));
  model.zero_grad();
  const Tensor dx =
      model.backward(context, Tensor::from(projection, y.shape()).to(y.device()), true);
  ASSERT_TRUE(dx.defined());
  ASSERT_EQ(dx.shape(), input.shape());
  std::vector<detail::Target> targets;
  for (nn::Parameter* p : model.parameters())
    targets.push_back({p->name, &p->value, host_values(p->grad)});
  targets.push_back({"input", &input, host_values(dx)});
  for (detail::Target& target : targets) detail::compare(model, input, target, projection, check);
}

}  // namespace kiln::test
