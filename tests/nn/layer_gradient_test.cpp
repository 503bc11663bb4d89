// Every layer type's backward pass against finite differences of its forward pass
// (tests/nn/gradient_checker.h explains the step and the tolerance), on every device
// the build has.
#include <kiln/nn/model.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nn/gradient_checker.h"

namespace kiln::nn {
namespace {

using Json = nlohmann::json;
using test::build_model;
using test::check_gradients;
using test::GradientCheck;
using test::random_tensor;

class LayerGradient : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override {
    if (const std::string why = test::skip_reason(device()); !why.empty()) GTEST_SKIP() << why;
  }
  Device device() const { return GetParam(); }
};

// Values in +-[margin, 1], random signs: no element within `margin` of ReLU's kink.
Tensor away_from_zero(const Shape& shape, std::uint64_t seed, float margin) {
  std::vector<float> values = random_tensor(shape, seed).to_vector();
  for (float& v : values) v = std::copysign(margin + (1.0f - margin) * std::abs(v), v);
  return Tensor::from(values, shape);
}

// Distinct values in (-1, 1), 2 / n apart, in a random order: max-pool windows have
// no ties, and a perturbation below 1 / n cannot change any window's maximum.
Tensor distinct_values(const Shape& shape, std::uint64_t seed) {
  const std::int64_t n = shape_elements(shape);
  const std::vector<std::int64_t> order = permutation(n, seed, 0);
  std::vector<float> values;
  for (const std::int64_t rank : order)
    values.push_back(-1.0f + 2.0f * (static_cast<float>(rank) + 0.5f) / static_cast<float>(n));
  return Tensor::from(values, shape);
}

// Gives every parameter random values in [low, high) (norm layers start at 1 and 0,
// which would hide a gamma that is used in the wrong place).
void randomize_parameters(Model& model, std::uint64_t seed, float low, float high) {
  for (Parameter* p : model.parameters()) {
    test::set_values(p->value, random_tensor(p->value.shape(), seed++, low, high).to_vector());
  }
}

Shape batch_of(std::int64_t batch, Shape sample) {
  sample.insert(sample.begin(), batch);
  return sample;
}

TEST_P(LayerGradient, LinearWithBias) {
  Model model = build_model(Json::parse(R"([{"linear": {"out": 4}}])"), {5}, device());
  check_gradients(model, random_tensor({3, 5}, 1));
}

// 1200 weights: the checker compares a fixed sample of 100 coordinates of each tensor.
TEST_P(LayerGradient, WideLinearOnASampleOfCoordinates) {
  Model model = build_model(Json::parse(R"([{"linear": {"out": 30}}])"), {40}, device());
  GradientCheck check;
  check.max_coordinates = 100;
  check_gradients(model, random_tensor({2, 40}, 16), check);
}

TEST_P(LayerGradient, LinearWithoutBias) {
  Model model =
      build_model(Json::parse(R"([{"linear": {"out": 3, "bias": false}}])"), {6}, device());
  ASSERT_EQ(model.parameters().size(), 1u);
  check_gradients(model, random_tensor({4, 6}, 2));
}

TEST_P(LayerGradient, FlattenThenLinear) {
  Model model =
      build_model(Json::parse(R"(["flatten", {"linear": {"out": 3}}])"), {2, 3, 3}, device());
  check_gradients(model, random_tensor({2, 2, 3, 3}, 3));
}

struct ConvCase {
  std::int64_t stride, padding;
  bool bias;
};

class Conv2dGradient : public ::testing::TestWithParam<std::tuple<Device, ConvCase>> {
 protected:
  void SetUp() override {
    const std::string why = test::skip_reason(std::get<0>(GetParam()));
    if (!why.empty()) GTEST_SKIP() << why;
  }
};

TEST_P(Conv2dGradient, MatchesFiniteDifferences) {
  const auto& [device, c] = GetParam();
  const Json layers = Json::array({{{"conv2d",
                                     {{"out", 4},
                                      {"kernel", 3},
                                      {"stride", c.stride},
                                      {"padding", c.padding},
                                      {"bias", c.bias}}}}});
  Model model = build_model(layers, {3, 7, 7}, device);
  ASSERT_EQ(model.parameters().size(), c.bias ? 2u : 1u);
  check_gradients(model, random_tensor({2, 3, 7, 7}, 4));
}

INSTANTIATE_TEST_SUITE_P(
    Geometries, Conv2dGradient,
    ::testing::Combine(::testing::ValuesIn(test::devices_under_test()),
                       ::testing::Values(ConvCase{1, 0, true}, ConvCase{1, 1, false},
                                         ConvCase{2, 0, false}, ConvCase{2, 1, true})),
    [](const auto& info) {
      const ConvCase& c = std::get<1>(info.param);
      return (std::get<0>(info.param).is_cpu() ? std::string("cpu") : std::string("cuda")) +
             "_stride" + std::to_string(c.stride) + "_padding" + std::to_string(c.padding) +
             (c.bias ? "_bias" : "_nobias");
    });

TEST_P(LayerGradient, MaxPool2d) {
  // h = 1e-3 is below half the 2/144 spacing of distinct_values.
  GradientCheck check;
  check.step = 1e-3;
  for (const char* layer : {R"([{"maxpool2d": {"kernel": 2}}])",
                            R"([{"maxpool2d": {"kernel": 3, "stride": 2, "padding": 1}}])"}) {
    SCOPED_TRACE(layer);
    Model model = build_model(Json::parse(layer), {2, 6, 6}, device());
    check_gradients(model, distinct_values({2, 2, 6, 6}, 5), check);
  }
}

TEST_P(LayerGradient, AvgPool2d) {
  for (const char* layer : {R"([{"avgpool2d": {"kernel": 2}}])",
                            R"([{"avgpool2d": {"kernel": 3, "stride": 2, "padding": 1}}])"}) {
    SCOPED_TRACE(layer);
    Model model = build_model(Json::parse(layer), {2, 5, 5}, device());
    check_gradients(model, random_tensor({2, 2, 5, 5}, 6));
  }
}

TEST_P(LayerGradient, GlobalAvgPool) {
  Model model = build_model(Json::parse(R"(["global_avgpool"])"), {3, 4, 5}, device());
  check_gradients(model, random_tensor({2, 3, 4, 5}, 7));
}

TEST_P(LayerGradient, BatchNorm2dInTrainingMode) {
  Model model = build_model(Json::parse(R"([{"batchnorm2d": {}}])"), {3, 4, 4}, device());
  randomize_parameters(model, 20, 0.5f, 1.5f);
  check_gradients(model, random_tensor({4, 3, 4, 4}, 8));
}

TEST_P(LayerGradient, LayerNorm) {
  for (const Shape& sample : {Shape{6}, Shape{2, 5}}) {
    SCOPED_TRACE(shape_string(sample));
    Model model = build_model(Json::parse(R"([{"layernorm": {}}])"), sample, device());
    randomize_parameters(model, 30, 0.5f, 1.5f);
    check_gradients(model, random_tensor(batch_of(3, sample), 9, -2.0f, 2.0f));
  }
}

TEST_P(LayerGradient, Relu) {
  // Inputs at least 0.1 from the kink, ten times the step.
  Model model = build_model(Json::parse(R"(["relu"])"), {12}, device());
  check_gradients(model, away_from_zero({3, 12}, 10, 0.1f));
}

TEST_P(LayerGradient, Gelu) {
  Model model = build_model(Json::parse(R"(["gelu"])"), {12}, device());
  check_gradients(model, random_tensor({3, 12}, 11, -3.0f, 3.0f));
}

TEST_P(LayerGradient, Silu) {
  Model model = build_model(Json::parse(R"(["silu"])"), {12}, device());
  check_gradients(model, random_tensor({3, 12}, 14, -4.0f, 4.0f));
}

TEST_P(LayerGradient, LeakyRelu) {
  Model model =
      build_model(Json::parse(R"([{"leaky_relu": {"negative_slope": 0.1}}])"), {12}, device());
  check_gradients(model, away_from_zero({3, 12}, 15, 0.1f));
}

TEST_P(LayerGradient, DropoutWithItsMaskFixedByTheStep) {
  Model model = build_model(Json::parse(R"([{"dropout": {"p": 0.3}}])"), {20}, device());
  const Tensor x = away_from_zero({4, 20}, 12, 0.1f);
  ForwardContext context;
  const std::vector<float> y =
      test::host_values(model.forward(x.to(device()), GradientCheck{}.info, context));
  const auto dropped = std::count(y.begin(), y.end(), 0.0f);
  EXPECT_GT(dropped, 8);  // expected 24 of 80
  EXPECT_LT(dropped, 40);
  check_gradients(model, x);
}

TEST_P(LayerGradient, FlattenAlone) {
  Model model = build_model(Json::parse(R"(["flatten", "gelu"])"), {2, 3}, device());
  check_gradients(model, random_tensor({2, 2, 3}, 13));
}

// Seeds of an input for which every pre-activation that `prefix` computes lies more
// than `margin` from zero; a perturbation of one coordinate by h moves a
// pre-activation by at most h max(|x|, |w|, 1) = h here, so margin = 2h keeps every
// ReLU on its side.
Tensor kink_free_input(Model& prefix, const Shape& shape, float margin) {
  for (std::uint64_t seed = 100; seed < 200; ++seed) {
    const Tensor x = random_tensor(shape, seed);
    ForwardContext context;
    const std::vector<float> z =
        test::host_values(prefix.forward(x.to(prefix.device()), {Mode::Train, 0, 0}, context));
    if (std::all_of(z.begin(), z.end(), [&](float v) { return std::abs(v) > margin; })) return x;
  }
  ADD_FAILURE() << "no input without a pre-activation near 0";
  return random_tensor(shape, 100);
}

TEST_P(LayerGradient, ResidualOfConvAndRelu) {
  const Json conv = {{"conv2d", {{"out", 2}, {"kernel", 3}, {"padding", 1}}}};
  Model model =
      build_model(Json::array({{{"residual", Json::array({conv, "relu"})}}}), {2, 5, 5}, device());
  EXPECT_EQ(model.parameters().at(0)->name, "layers.0.body.0.weight");
  // The same seed and layer order give the conv alone the residual's weights.
  Model prefix = build_model(Json::array({conv}), {2, 5, 5}, device());
  EXPECT_EQ(test::host_values(prefix.parameters()[0]->value),
            test::host_values(model.parameters()[0]->value));
  GradientCheck check;
  check.step = 1e-3;
  check_gradients(model, kink_free_input(prefix, {2, 2, 5, 5}, 2e-3f), check);
}

TEST_P(LayerGradient, NamedBlock) {
  const Json blocks =
      Json::parse(R"({"conv_gelu": [{"conv2d": {"out": 3, "kernel": 3, "padding": 1}}, "gelu"]})");
  const Json layers = Json::parse(
      R"([{"block": "conv_gelu"}, {"residual": {"block": "conv_gelu"}}, "flatten",
          {"linear": {"out": 2}}])");
  Model model = build_model(layers, {3, 4, 4}, device(), 3, blocks);
  EXPECT_EQ(model.parameters().at(0)->name, "layers.0.0.weight");
  EXPECT_EQ(model.parameters().at(2)->name, "layers.1.body.0.weight");
  check_gradients(model, random_tensor({2, 3, 4, 4}, 14));
}

// Several smooth layers chained: the gradients flow through every backward pass.
// Two normalisations over 12 values each curve L strongly: the truncation error,
// h^2 |L'''| / 6, measured 2.2e-2 at h = 3e-2 and 2.5e-3 at h = 1e-2 on the worst
// coordinate, so this check takes h = 3e-3 (~2e-4).
TEST_P(LayerGradient, SmallConvNetOfSmoothLayers) {
  const Json layers = Json::parse(R"([
      {"conv2d": {"out": 3, "kernel": 3, "stride": 2, "padding": 1}}, "gelu",
      {"avgpool2d": {"kernel": 2, "stride": 1}}, {"batchnorm2d": {}}, "flatten",
      {"layernorm": {}}, {"dropout": {"p": 0.2}}, {"linear": {"out": 3}}])");
  Model model = build_model(layers, {2, 6, 6}, device());
  GradientCheck check;
  check.step = 3e-3;
  check_gradients(model, random_tensor({3, 2, 6, 6}, 15), check);
}

// The checker itself: a weight gradient 5% off (scaled through the gradient hook,
// which runs inside backward) must fail it, naming the tensor.
TEST(GradientChecker, FlagsAGradientFivePercentOff) {
  Model model = build_model(Json::parse(R"([{"linear": {"out": 4}}])"), {5}, Device::cpu());
  model.set_gradient_hook(
      [](const GradientBucket& bucket) {
        for (Parameter* p : bucket.parameters) {
          if (p->name != "layers.0.weight") continue;
          std::vector<float> grad = test::host_values(p->grad);
          for (float& g : grad) g *= 1.05f;
          test::set_values(p->grad, grad);
        }
      },
      1);
  ::testing::TestPartResultArray failures;
  {
    const ::testing::ScopedFakeTestPartResultReporter intercept(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    check_gradients(model, random_tensor({3, 5}, 1));
  }
  ASSERT_EQ(failures.size(), 20);  // each of the 4x5 weight coordinates; bias and input pass
  for (int i = 0; i < failures.size(); ++i)
    EXPECT_NE(std::string(failures.GetTestPartResult(i).message()).find("layers.0.weight["),
              std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Devices, LayerGradient, ::testing::ValuesIn(test::devices_under_test()),
                         test::device_test_name);

}  // namespace
}  // namespace kiln::nn
