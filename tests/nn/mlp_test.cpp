#include <kiln/error.h>
#include <kiln/nn/mlp.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace kiln::nn {
namespace {

TEST(MlpSpec, JsonRoundTrip) {
  const MlpSpec spec{784, {256, 128}, 10};
  const auto json = spec.to_json();
  EXPECT_EQ(json, nlohmann::json::parse(
                      R"({"type":"mlp","inputs":784,"hidden":[256,128],"outputs":10})"));
  const MlpSpec back = MlpSpec::from_json(json);
  EXPECT_EQ(back.inputs, 784);
  EXPECT_EQ(back.hidden, (std::vector<std::int64_t>{256, 128}));
  EXPECT_EQ(back.outputs, 10);
  // "type" and "hidden" may be left out (a linear model).
  const MlpSpec linear = MlpSpec::from_json(nlohmann::json::parse(R"({"inputs":3,"outputs":2})"));
  EXPECT_TRUE(linear.hidden.empty());
}

TEST(MlpSpec, MalformedSpecsAreDataErrors) {
  for (const char* text : {
           R"([1, 2])",
           R"({"inputs": 3})",
           R"({"inputs": 0, "outputs": 2})",
           R"({"inputs": -3, "outputs": 2})",
           R"({"inputs": 3.5, "outputs": 2})",
           R"({"inputs": "3", "outputs": 2})",
           R"({"inputs": 3, "outputs": 2, "hidden": 4})",
           R"({"inputs": 3, "outputs": 2, "hidden": [4, 0]})",
           R"({"inputs": 3, "outputs": 2, "hidden": [4, true]})",
           R"({"inputs": 3, "outputs": 2, "hiden": [4]})",
           R"({"type": "cnn", "inputs": 3, "outputs": 2})",
           R"({"inputs": 99999999999999999999, "outputs": 2})",
           R"({"inputs": 4294967296, "outputs": 2})",
       })
    EXPECT_THROW(MlpSpec::from_json(nlohmann::json::parse(text)), DataError) << text;
}

TEST(Mlp, BadWidthsAreConfigErrors) {
  EXPECT_THROW(Mlp(MlpSpec{0, {}, 2}, 1), ConfigError);
  EXPECT_THROW(Mlp(MlpSpec{2, {4, -1}, 2}, 1), ConfigError);
  EXPECT_THROW(Mlp(MlpSpec{2, {}, 0}, 1), ConfigError);
}

TEST(Mlp, ParametersFollowTorchLayout) {
  const Mlp model(MlpSpec{5, {4}, 3}, 1);
  const auto& p = model.parameters();
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].name, "layers.0.weight");
  EXPECT_EQ(p[0].shape, (std::vector<std::int64_t>{4, 5}));
  EXPECT_EQ(p[1].name, "layers.0.bias");
  EXPECT_EQ(p[1].shape, (std::vector<std::int64_t>{4}));
  EXPECT_EQ(p[2].name, "layers.1.weight");
  EXPECT_EQ(p[2].shape, (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(p[3].name, "layers.1.bias");
  for (const Parameter& q : p) EXPECT_EQ(q.grad.size(), q.value.size());
}

TEST(Mlp, InitIsTheDocumentedPhiloxUniform) {
  const std::uint64_t seed = 1234;
  const Mlp model(MlpSpec{9, {16}, 4}, seed);
  const auto& p = model.parameters();
  // Element k of the parameters laid end to end uses draw k of the Init stream.
  std::uint64_t index = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double fan_in = i < 2 ? 9.0 : 16.0;
    for (const float value : p[i].value) {
      const float u = uniform01(seed, RngStream::Init, index++);
      ASSERT_FLOAT_EQ(value, (2.0f * u - 1.0f) * static_cast<float>(1.0 / std::sqrt(fan_in)));
    }
  }
  EXPECT_EQ(index, 9u * 16 + 16 + 16 * 4 + 4);
}

TEST(Mlp, InitIsDeterministicBoundedAndCentered) {
  const Mlp a(MlpSpec{784, {256}, 10}, 7), b(MlpSpec{784, {256}, 10}, 7),
      c(MlpSpec{784, {256}, 10}, 8);
  EXPECT_EQ(a.parameters()[0].value, b.parameters()[0].value);
  EXPECT_NE(a.parameters()[0].value, c.parameters()[0].value);
  const auto& w = a.parameters()[0].value;
  const float bound = 1.0f / 28.0f;  // 1 / sqrt(784)
  double sum = 0.0, sum_squares = 0.0;
  for (const float v : w) {
    ASSERT_GE(v, -bound);
    ASSERT_LT(v, bound);
    sum += v;
    sum_squares += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(w.size());
  // U(-a, a): mean 0, variance a^2 / 3. Over 200704 draws the sd of the sample mean
  // is 4.6e-5 and of the sample variance 8.5e-7; allow about 5 of each.
  EXPECT_NEAR(sum / n, 0.0, 2.5e-4);
  EXPECT_NEAR(sum_squares / n, bound * bound / 3.0, 5e-6);
}

// 2 -> 2 (ReLU) -> 1 with small dyadic weights: every value is exact in float.
Mlp hand_model() {
  Mlp model(MlpSpec{2, {2}, 1}, 0);
  auto& p = model.parameters();
  p[0].value = {1.0f, -1.0f, 2.0f, 0.5f};  // W0 [[1, -1], [2, 0.5]]
  p[1].value = {0.5f, -1.0f};
  p[2].value = {1.5f, -2.0f};  // W1 [[1.5, -2]]
  p[3].value = {0.25f};
  return model;
}

TEST(Mlp, ForwardMatchesHandComputation) {
  const Mlp model = hand_model();
  const std::vector<float> x{1, 2, -1, 0.5f, 3, 1};
  const auto context = model.forward(x.data(), 3);
  // Hidden pre-activations: (-0.5, 2), (-1, -2.75), (2.5, 5.5); after ReLU:
  EXPECT_EQ(context.outputs[0], (std::vector<float>{0, 2, 0, 0, 2.5f, 5.5f}));
  // Logits: 1.5 h0 - 2 h1 + 0.25.
  EXPECT_EQ(context.logits(), (std::vector<float>{-3.75f, 0.25f, -7.0f}));
  EXPECT_EQ(context.batch, 3);
  EXPECT_EQ(context.input, x.data());
}

TEST(Mlp, BackwardMatchesHandComputation) {
  Mlp model = hand_model();
  const std::vector<float> x{1, 2, -1, 0.5f, 3, 1};
  const auto context = model.forward(x.data(), 3);
  const std::vector<float> dlogits{1, 1, 1};
  std::vector<float> dinput(6);
  model.backward(context, dlogits.data(), dinput.data());
  const auto& p = model.parameters();
  EXPECT_EQ(p[2].grad, (std::vector<float>{2.5f, 7.5f}));  // sum of hidden rows
  EXPECT_EQ(p[3].grad, (std::vector<float>{3.0f}));
  // dh = W1 masked by h > 0: (0, -2), (0, 0), (1.5, -2); dW0 = dh^T x.
  EXPECT_EQ(p[0].grad, (std::vector<float>{4.5f, 1.5f, -8.0f, -6.0f}));
  EXPECT_EQ(p[1].grad, (std::vector<float>{1.5f, -4.0f}));
  EXPECT_EQ(dinput, (std::vector<float>{-4, -1, 0, 0, -2.5f, -2.5f}));

  // backward sets rather than accumulates, and the plain overload agrees.
  model.backward(context, dlogits.data());
  EXPECT_EQ(p[0].grad, (std::vector<float>{4.5f, 1.5f, -8.0f, -6.0f}));
}

TEST(Mlp, EmptyBatchGivesZeroGradients) {
  Mlp model = hand_model();
  const auto context = model.forward(nullptr, 0);
  EXPECT_TRUE(context.logits().empty());
  model.backward(context, nullptr);
  for (const Parameter& p : model.parameters())
    for (const float g : p.grad) EXPECT_EQ(g, 0.0f);
}

TEST(Mlp, MisuseIsAnInternalError) {
  Mlp model = hand_model();
  const std::vector<float> x{1, 2};
  EXPECT_THROW(model.forward(x.data(), -1), InternalError);
  EXPECT_THROW(model.forward(nullptr, 1), InternalError);
  auto context = model.forward(x.data(), 1);
  context.outputs.pop_back();
  const std::vector<float> dlogits{1};
  EXPECT_THROW(model.backward(context, dlogits.data()), InternalError);
  model.parameters()[0].value.pop_back();
  EXPECT_THROW(model.forward(x.data(), 1), InternalError);
}

}  // namespace
}  // namespace kiln::nn
