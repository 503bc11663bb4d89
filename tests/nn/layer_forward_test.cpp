// Forward values of the layers against independent computations: by hand, by a
// double-precision reference written here, and by torch (KILN_PYTHON).
#include <kiln/nn/model.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <vector>

#include "formats/python_check.h"
#include "nn/gradient_checker.h"
#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/pool.h"

namespace kiln::nn {
namespace {

using Json = nlohmann::json;
using test::build_model;
using test::random_tensor;

Tensor conv(const ops::Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias) {
  Tensor y = Tensor::empty(g.output_shape());
  ops::conv2d_forward(g, x, w, bias, y);
  return y;
}

TEST(LinearForward, HandComputed) {
  Model model = build_model(Json::parse(R"([{"linear": {"out": 2}}])"), {3}, Device::cpu());
  test::set_values(model.parameters()[0]->value, {1, 2, 3, /**/ -1, 0, 0.5f});
  test::set_values(model.parameters()[1]->value, {0.25f, -2});
  ForwardContext context;
  // y = x W^T + b for x = (1, 1, 1) and (2, 0, -2).
  EXPECT_EQ(model.forward(Tensor::from({1, 1, 1, 2, 0, -2}, {2, 3}), {}, context).to_vector(),
            (std::vector<float>{6.25f, -2.5f, -3.75f, -5.0f}));
}

TEST(Conv2dForward, HandComputedSingleChannel) {
  // x = 1..9 in a 3x3 plane, w = [[1, 2], [3, 4]], bias 0.5.
  const Tensor x = Tensor::from({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  const Tensor w = Tensor::from({1, 2, 3, 4}, {1, 1, 2, 2});
  const Tensor bias = Tensor::from({0.5f}, {1});
  // Stride 1, no padding: 1+4+12+20, 2+6+15+24, 4+10+21+32, 5+12+24+36.
  EXPECT_EQ(conv(ops::Conv2dGeometry::square(1, 1, 3, 1, 2, 1, 0), x, w, bias).to_vector(),
            (std::vector<float>{37.5f, 47.5f, 67.5f, 77.5f}));
  // Stride 2, padding 1: windows at (-1,-1), (-1,1), (1,-1), (1,1):
  // 4*1; 3*2 + 4*3; 2*4 + 4*7; 1*5 + 2*6 + 3*8 + 4*9.
  EXPECT_EQ(conv(ops::Conv2dGeometry::square(1, 1, 3, 1, 2, 2, 1), x, w, Tensor()).to_vector(),
            (std::vector<float>{4, 18, 36, 77}));
}

// Direct convolution in double: y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] x[n,c,i s+u-p, j s+v-p].
std::vector<double> reference_conv(const ops::Conv2dGeometry& g, const std::vector<float>& x,
                                   const std::vector<float>& w, const std::vector<float>& b) {
  std::vector<double> y;
  const std::int64_t H = g.height, W = g.width, K = g.kernel, C = g.in_channels;
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t o = 0; o < g.out_channels; ++o)
      for (std::int64_t i = 0; i < g.out_height(); ++i)
        for (std::int64_t j = 0; j < g.out_width(); ++j) {
          double sum = b.empty() ? 0.0 : b[static_cast<std::size_t>(o)];
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t u = 0; u < K; ++u)
              for (std::int64_t v = 0; v < K; ++v) {
                const std::int64_t r = i * g.stride + u - g.padding,
                                   s = j * g.stride + v - g.padding;
                if (r < 0 || r >= H || s < 0 || s >= W) continue;
                sum += static_cast<double>(
                           w[static_cast<std::size_t>(((o * C + c) * K + u) * K + v)]) *
                       x[static_cast<std::size_t>(((n * C + c) * H + r) * W + s)];
              }
          y.push_back(sum);
        }
  return y;
}

TEST(Conv2dForward, MatchesADirectDoubleConvolution) {
  for (const auto& g : {ops::Conv2dGeometry::square(2, 3, 7, 4, 3, 1, 0),
                        ops::Conv2dGeometry::square(2, 3, 7, 4, 3, 2, 1),
                        ops::Conv2dGeometry::square(1, 2, 6, 5, 5, 1, 2),
                        ops::Conv2dGeometry::square(3, 1, 5, 2, 1, 2, 0)}) {
    SCOPED_TRACE(shape_string(g.output_shape()));
    const Tensor x = random_tensor(g.input_shape(), 1);
    const Tensor w = random_tensor(g.weight_shape(), 2);
    const Tensor b = random_tensor({g.out_channels}, 3);
    const std::vector<float> y = conv(g, x, w, b).to_vector();
    const std::vector<double> expected =
        reference_conv(g, x.to_vector(), w.to_vector(), b.to_vector());
    ASSERT_EQ(y.size(), expected.size());
    // At most 3*5*5 + 1 products of numbers below 1: float rounding < 1e-5.
    for (std::size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], expected[i], 1e-5) << i;
  }
}

// A conv2d layer in a model, its weights written to a file, and torch's conv2d of them.
TEST(Conv2dForward, ModelMatchesTorch) {
  const Json layers =
      Json::parse(R"([{"conv2d": {"out": 3, "kernel": 3, "stride": 2, "padding": 1}}])");
  Model model = build_model(layers, {2, 6, 5}, Device::cpu(), 9);
  const Tensor x = random_tensor({2, 2, 6, 5}, 4);
  ForwardContext context;
  const std::vector<float> y = model.forward(x, {}, context).to_vector();
  const test::TempDir dir;
  std::ofstream(dir / "case.json") << Json{{"x", x.to_vector()},
                                           {"w", model.parameters()[0]->value.to_vector()},
                                           {"b", model.parameters()[1]->value.to_vector()}}
                                          .dump();
  const char* script = R"(
import sys, json
try:
    import torch
except ImportError as e:
    print("skipped: torch is not importable:", e); sys.exit(77)
c = json.load(open(sys.argv[1]))
x = torch.tensor(c["x"], dtype=torch.float64).reshape(2, 2, 6, 5)
w = torch.tensor(c["w"], dtype=torch.float64).reshape(3, 2, 3, 3)
b = torch.tensor(c["b"], dtype=torch.float64)
y = torch.nn.functional.conv2d(x, w, b, stride=2, padding=1)
json.dump({"shape": list(y.shape), "y": y.flatten().tolist()}, open(sys.argv[2], "w"))
)";
  KILN_RUN_PYTHON_CHECK(dir.path(), script,
                        {(dir / "case.json").string(), (dir / "torch.json").string()});
  const Json torch = Json::parse(std::ifstream(dir / "torch.json"));
  EXPECT_EQ(torch["shape"].get<Shape>(), (Shape{2, 3, 3, 3}));
  EXPECT_EQ(model.output_shape(), (Shape{3, 3, 3}));
  ASSERT_EQ(torch["y"].size(), y.size());
  for (std::size_t i = 0; i < y.size(); ++i)
    EXPECT_NEAR(y[i], torch["y"][i].get<double>(), 1e-5) << i;
}

// torch.nn.BatchNorm2d semantics: batch statistics in training (biased variance for
// normalising), running_mean/var updated with momentum 0.1 and the unbiased variance.
TEST(BatchNorm2dForward, RunningStatisticsFollowTorch) {
  Model model = build_model(Json::parse(R"([{"batchnorm2d": {}}])"), {2, 3, 2}, Device::cpu());
  const auto buffers = model.buffers();
  ASSERT_EQ(buffers.size(), 2u);
  EXPECT_EQ(buffers[0].first, "layers.0.running_mean");
  EXPECT_EQ(buffers[1].first, "layers.0.running_var");
  std::vector<double> mean(2, 0.0), var(2, 1.0);
  for (std::uint64_t seed : {5, 6}) {
    const Tensor x = random_tensor({4, 2, 3, 2}, seed, -1.0f, 3.0f);
    ForwardContext context;
    const std::vector<float> y = model.forward(x, {Mode::Train, 0, 0}, context).to_vector();
    const std::vector<float> v = x.to_vector();
    for (std::int64_t c = 0; c < 2; ++c) {
      std::vector<std::size_t> at;
      for (std::size_t n = 0; n < 4; ++n)
        for (std::size_t i = 0; i < 6; ++i)
          at.push_back((n * 2 + static_cast<std::size_t>(c)) * 6 + i);
      double sum = 0, squares = 0;
      for (const std::size_t i : at) sum += v[i];
      const double mu = sum / 24;
      for (const std::size_t i : at) squares += (v[i] - mu) * (v[i] - mu);
      for (const std::size_t i : at)
        EXPECT_NEAR(y[i], (v[i] - mu) / std::sqrt(squares / 24 + 1e-5), 1e-5);
      mean[c] = 0.9 * mean[c] + 0.1 * mu;
      var[c] = 0.9 * var[c] + 0.1 * squares / 23;
    }
    const std::vector<float> running_mean = buffers[0].second->to_vector();
    const std::vector<float> running_var = buffers[1].second->to_vector();
    for (std::size_t c = 0; c < 2; ++c) {
      EXPECT_NEAR(running_mean[c], mean[c], 1e-6) << "seed " << seed << " channel " << c;
      EXPECT_NEAR(running_var[c], var[c], 1e-6) << "seed " << seed << " channel " << c;
    }
  }
  // Evaluation normalises with the running statistics and leaves them alone.
  const Tensor x = random_tensor({1, 2, 3, 2}, 7);
  ForwardContext context;
  const std::vector<float> y = model.forward(x, {Mode::Eval, 0, 0}, context).to_vector();
  for (std::size_t i = 0; i < y.size(); ++i) {
    const std::size_t c = i / 6;
    EXPECT_NEAR(y[i], (x.to_vector()[i] - mean[c]) / std::sqrt(var[c] + 1e-5), 1e-5) << i;
  }
  EXPECT_NEAR(buffers[0].second->to_vector()[0], mean[0], 1e-6);
}

TEST(MaxPool2dForward, ArgmaxIsTheFirstMaximumInRowMajorOrder) {
  ops::Pool2dGeometry g;
  g.batch = g.channels = 1;
  g.height = g.width = 4;
  // Windows (2x2, stride 2): a tie at (0,0)/(0,1); a tie at (1,2)/(1,3); a single
  // maximum at (3,0); all equal (first wins).
  const Tensor x = Tensor::from({5, 5, 0, 1,  //
                                 1, 2, 7, 7,  //
                                 0, 1, 3, 3,  //
                                 9, 0, 3, 3},
                                {1, 1, 4, 4});
  Tensor y = Tensor::empty(g.output_shape()), argmax = Tensor::empty(g.output_shape(), DType::I32);
  ops::max_pool2d_forward(g, x, y, argmax);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{5, 7, 9, 3}));
  const std::int32_t* where = argmax.data<std::int32_t>();
  EXPECT_EQ(std::vector<std::int32_t>(where, where + 4), (std::vector<std::int32_t>{0, 6, 12, 10}));
  // Backward routes each output's gradient to its argmax alone.
  Tensor dx = Tensor::empty(g.input_shape());
  ops::max_pool2d_backward(g, Tensor::from({1, 2, 3, 4}, g.output_shape()), argmax, dx);
  std::vector<float> expected(16, 0.0f);
  expected[0] = 1, expected[6] = 2, expected[12] = 3, expected[10] = 4;
  EXPECT_EQ(dx.to_vector(), expected);
}

// 2x2 stride 2 has its own loop (ops/pool.cpp): it must pick what the window rule
// picks, on odd sizes (the last row and column belong to no window), ties, -inf
// and NaN (which wins), and route gradients back to exactly those positions.
TEST(MaxPool2dForward, TwoByTwoPicksWhatTheWindowRulePicks) {
  ops::Pool2dGeometry g;
  g.batch = 2;
  g.channels = 3;
  g.height = 5;
  g.width = 7;
  std::vector<float> values = random_tensor(g.input_shape(), 11).to_vector();
  for (float& v : values) v = std::round(2 * v);  // -2..2: ties in most windows
  values[8] = -std::numeric_limits<float>::infinity();
  values[36] = std::nan("");
  const Tensor x = Tensor::from(values, g.input_shape());
  Tensor y = Tensor::empty(g.output_shape()), argmax = Tensor::empty(g.output_shape(), DType::I32);
  ops::max_pool2d_forward(g, x, y, argmax);
  const std::vector<float> out = y.to_vector();
  const std::int32_t* where = argmax.data<std::int32_t>();
  std::vector<float> expected_dx(values.size(), 0.0f), dy(out.size());
  for (std::size_t o = 0; o < out.size(); ++o) {
    const std::size_t plane = o / 6, oy = o % 6 / 3, ox = o % 3;  // 2 x 3 outputs a plane
    float best = -std::numeric_limits<float>::infinity();
    std::int32_t best_at = static_cast<std::int32_t>(2 * oy * 7 + 2 * ox);
    for (std::size_t iy = 2 * oy; iy < 2 * oy + 2; ++iy)
      for (std::size_t ix = 2 * ox; ix < 2 * ox + 2; ++ix) {
        const float v = values[plane * 35 + iy * 7 + ix];
        if (v > best || std::isnan(v)) best = v, best_at = static_cast<std::int32_t>(iy * 7 + ix);
      }
    if (std::isnan(best))
      EXPECT_TRUE(std::isnan(out[o])) << o;
    else
      EXPECT_EQ(out[o], best) << o;
    EXPECT_EQ(where[o], best_at) << o;
    dy[o] = static_cast<float>(o + 1);
    expected_dx[plane * 35 + static_cast<std::size_t>(best_at)] = dy[o];
  }
  Tensor dx = Tensor::full(g.input_shape(), 7.0f);  // stale values must not survive
  ops::max_pool2d_backward(g, Tensor::from(dy, g.output_shape()), argmax, dx);
  EXPECT_EQ(dx.to_vector(), expected_dx);
}

TEST(MaxPool2dForward, PaddingNeverWinsOverNegativeValues) {
  Model model =
      build_model(Json::parse(R"([{"maxpool2d": {"kernel": 3, "stride": 2, "padding": 1}}])"),
                  {1, 3, 3}, Device::cpu());
  const Tensor x = Tensor::from({-9, -8, -7, -6, -5, -4, -3, -2, -1}, {1, 1, 3, 3});
  ForwardContext context;
  EXPECT_EQ(model.forward(x, {}, context).to_vector(), (std::vector<float>{-5, -4, -2, -1}));
}

TEST(AvgPool2dForward, PaddedPositionsCountAsZeros) {
  // torch's count_include_pad=True: each 3x3 window over a padded 2x2 of ones is 4/9.
  Model model =
      build_model(Json::parse(R"([{"avgpool2d": {"kernel": 3, "stride": 1, "padding": 1}}])"),
                  {1, 2, 2}, Device::cpu());
  ForwardContext context;
  for (const float v : model.forward(Tensor::full({1, 1, 2, 2}, 1.0f), {}, context).to_vector())
    EXPECT_FLOAT_EQ(v, 4.0f / 9.0f);
  Model plain = build_model(Json::parse(R"([{"avgpool2d": {}}])"), {1, 2, 4}, Device::cpu());
  const Tensor x = Tensor::from({1, 2, 3, 4, 5, 6, 7, 8}, {1, 1, 2, 4});
  EXPECT_EQ(plain.forward(x, {}, context).to_vector(), (std::vector<float>{3.5f, 5.5f}));
}

TEST(GlobalAvgPoolForward, MeanOfEachPlane) {
  Model model = build_model(Json::parse(R"(["global_avgpool"])"), {2, 2, 2}, Device::cpu());
  const Tensor x = Tensor::from({1, 2, 3, 4, -1, -1, 5, 9}, {1, 2, 2, 2});
  ForwardContext context;
  EXPECT_EQ(model.forward(x, {}, context).to_vector(), (std::vector<float>{2.5f, 3.0f}));
}

TEST(LayerNormForward, NormalisesTheLastAxisWithTheBiasedVariance) {
  Model model =
      build_model(Json::parse(R"([{"layernorm": {"eps": 0.01}}])"), {2, 4}, Device::cpu());
  test::set_values(model.parameters()[0]->value, {1, 2, 3, 4});
  test::set_values(model.parameters()[1]->value, {0, 0, 1, -1});
  const Tensor x = Tensor::from({1, 2, 3, 4, 0, 0, 0, 8}, {1, 2, 4});
  ForwardContext context;
  const std::vector<float> y = model.forward(x, {}, context).to_vector();
  // Row (1, 2, 3, 4): mean 2.5, variance 1.25; row (0, 0, 0, 8): mean 2, variance 12.
  const double gamma[] = {1, 2, 3, 4}, beta[] = {0, 0, 1, -1};
  for (std::size_t i = 0; i < 8; ++i) {
    const double mean = i < 4 ? 2.5 : 2.0, variance = i < 4 ? 1.25 : 12.0;
    const double expected =
        (x.to_vector()[i] - mean) / std::sqrt(variance + 0.01) * gamma[i % 4] + beta[i % 4];
    EXPECT_NEAR(y[i], expected, 1e-6) << i;
  }
}

TEST(GeluForward, ExactErfForm) {
  // 0.5 x (1 + erf(x / sqrt 2)), from Python's math.erf in double.
  const std::vector<float> x{-3.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 2.0f, 3.0f};
  const std::vector<double> expected{
      -0.00404969409489031, -0.15865525393145707, -0.15426876936299344, 0.0,
      0.34573123063700656,  0.8413447460685429,   1.9544997361036416,   2.99595030590511};
  Tensor y = Tensor::empty({8});
  ops::elementwise_forward(ops::Gelu{}, Tensor::from(x, {8}), y);
  for (std::size_t i = 0; i < x.size(); ++i)
    EXPECT_NEAR(y.to_vector()[i], expected[i], 2e-7 * (1 + std::abs(expected[i]))) << x[i];
}

TEST(SiluForward, XTimesSigmoid) {
  // x / (1 + exp(-x)), from Python's math.exp in double.
  const std::vector<float> x{-6.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 2.0f, 6.0f};
  const std::vector<double> expected{
      -0.014835738939808645, -0.2689414213699951, -0.18877033123872,  0.0,
      0.31122966876128,      0.7310585786300049,  1.7615941559557646, 5.985164261060192};
  Model model = build_model(Json::parse(R"(["silu"])"), {8}, Device::cpu());
  ForwardContext context;
  const std::vector<float> y = model.forward(Tensor::from(x, {1, 8}), {}, context).to_vector();
  for (std::size_t i = 0; i < x.size(); ++i)
    EXPECT_NEAR(y[i], expected[i], 2e-7 * (1 + std::abs(expected[i]))) << x[i];
}

TEST(LeakyReluForward, ScalesNegativesBySlopeAndPassesNaN) {
  Model model =
      build_model(Json::parse(R"([{"leaky_relu": {"negative_slope": 0.25}}])"), {5}, Device::cpu());
  EXPECT_EQ(model.spec()["layers"][0], Json::parse(R"({"leaky_relu": {"negative_slope": 0.25}})"));
  ForwardContext context;
  const std::vector<float> y =
      model.forward(Tensor::from({-4.0f, -1.0f, 0.0f, 3.0f, NAN}, {1, 5}), {}, context).to_vector();
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[1], -0.25f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 3.0f);
  EXPECT_TRUE(std::isnan(y[4]));
  // torch's default slope.
  Model plain = build_model(Json::parse(R"(["leaky_relu"])"), {1}, Device::cpu());
  EXPECT_FLOAT_EQ(plain.spec()["layers"][0]["leaky_relu"]["negative_slope"].get<float>(), 0.01f);
}

// The dropout mask's documented address (ops/activation.h): element i of dropout
// layer l at step t keeps iff word i % 4 of Philox block {i / 4, l, Dropout, t} of
// the seed, as a 24-bit uniform, is >= p.
TEST(DropoutForward, MaskFollowsItsPhiloxAddress) {
  Model model = build_model(Json::parse(R"([{"dropout": {"p": 0.25}}, {"dropout": {"p": 0.5}}])"),
                            {37}, Device::cpu());
  const Tensor x = Tensor::full({2, 37}, 1.0f);
  const StepInfo step{Mode::Train, 0x123456789ull, 4};
  ForwardContext context;
  const std::vector<float> y = model.forward(x, step, context).to_vector();
  auto kept = [&](std::uint32_t layer, std::int64_t i, float p) {
    const auto words = philox4x32_raw({static_cast<std::uint32_t>(i / 4), layer,
                                       static_cast<std::uint32_t>(RngStream::Dropout), 4},
                                      {0x23456789u, 0x1u});
    return static_cast<float>(words[static_cast<std::size_t>(i % 4)] >> 8) * 0x1.0p-24f >= p;
  };
  int dropped = 0;
  for (std::int64_t i = 0; i < 74; ++i) {
    const float expected = kept(0, i, 0.25f) && kept(1, i, 0.5f) ? 1.0f / 0.75f / 0.5f : 0.0f;
    EXPECT_FLOAT_EQ(y[static_cast<std::size_t>(i)], expected) << i;
    dropped += expected == 0.0f;
  }
  EXPECT_GT(dropped, 20);  // about 62% of 74
  EXPECT_LT(dropped, 66);
  // Evaluation passes the input through.
  EXPECT_EQ(model.forward(x, {Mode::Eval, 1, 4}, context).to_vector(), x.to_vector());
}

}  // namespace
}  // namespace kiln::nn
