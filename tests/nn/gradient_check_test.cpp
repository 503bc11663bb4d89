// Backward passes against central finite differences.
//
// The MLP check differentiates an independent double-precision reference (a forward
// pass and a cross-entropy written here) with h = 1e-6: its error is about
// h^2 |f'''| + 1e-16 |f| / h < 1e-9, far below float32's. So the tolerance,
// |kiln - fd| <= 1e-6 + 1e-4 |fd|, is a budget for kiln's float32 arithmetic alone:
// each gradient is a sum of at most batch * width = 32 products of numbers <= ~1
// with relative rounding 6e-8, i.e. ~1e-6 absolute at worst; 1e-4 relative allows
// for the cancellation when a gradient is much smaller than its summands. A wrong
// mask, a transposed GEMM or a missing 1/batch is off by orders of magnitude more.
#include <kiln/nn/mlp.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace kiln::nn {
namespace {

struct Batch {
  std::int64_t size = 0;
  std::vector<float> x;
  std::vector<std::int32_t> labels;
};

Batch random_batch(const MlpSpec& spec, std::int64_t size, std::uint64_t seed) {
  Batch batch{size, {}, {}};
  for (std::int64_t i = 0; i < size * spec.inputs; ++i)
    batch.x.push_back(4.0f * uniform01(seed, RngStream::Augment, static_cast<std::uint64_t>(i)) -
                      2.0f);
  for (std::int64_t i = 0; i < size; ++i)
    batch.labels.push_back(static_cast<std::int32_t>(
        uniform_below(seed, RngStream::Shuffle, static_cast<std::uint64_t>(i),
                      static_cast<std::uint64_t>(spec.outputs))));
  return batch;
}

// The reference model: parameters in double, same layout as kiln's.
using Values = std::vector<std::vector<double>>;

Values to_double(const std::vector<Parameter>& parameters) {
  Values values;
  for (const Parameter& p : parameters) values.emplace_back(p.value.begin(), p.value.end());
  return values;
}

double reference_loss(const std::vector<Parameter>& layout, const Values& params,
                      const std::vector<double>& x, const std::vector<std::int32_t>& labels,
                      double smoothing, double* smallest_preactivation = nullptr) {
  const auto batch = static_cast<std::int64_t>(labels.size());
  std::vector<double> a = x;
  const std::size_t layers = layout.size() / 2;
  for (std::size_t l = 0; l < layers; ++l) {
    const std::int64_t out = layout[2 * l].shape[0], in = layout[2 * l].shape[1];
    std::vector<double> y(static_cast<std::size_t>(batch * out));
    for (std::int64_t b = 0; b < batch; ++b)
      for (std::int64_t o = 0; o < out; ++o) {
        double sum = params[2 * l + 1][o];
        for (std::int64_t i = 0; i < in; ++i) sum += a[b * in + i] * params[2 * l][o * in + i];
        if (l + 1 < layers) {
          if (smallest_preactivation)
            *smallest_preactivation = std::min(*smallest_preactivation, std::abs(sum));
          sum = std::max(sum, 0.0);
        }
        y[b * out + o] = sum;
      }
    a = std::move(y);
  }
  const std::int64_t classes = layout.back().shape[0];
  double total = 0.0;
  for (std::int64_t b = 0; b < batch; ++b) {
    const double* z = a.data() + b * classes;
    const double max = *std::max_element(z, z + classes);
    double sum = 0.0;
    for (std::int64_t k = 0; k < classes; ++k) sum += std::exp(z[k] - max);
    const double lse = max + std::log(sum);
    for (std::int64_t k = 0; k < classes; ++k) {
      const double target = smoothing / classes + (k == labels[b] ? 1.0 - smoothing : 0.0);
      total += target * (lse - z[k]);
    }
  }
  return total / batch;
}

void expect_gradient_close(double analytic, double numeric, const std::string& what) {
  EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-4 * std::abs(numeric)) << what;
}

class MlpGradientCheck : public ::testing::TestWithParam<double> {};

TEST_P(MlpGradientCheck, AllParametersAndInputMatchFiniteDifferences) {
  const double smoothing = GetParam();
  const MlpSpec spec{5, {8, 6}, 4};
  Mlp model(spec, 31);
  const Batch batch = random_batch(spec, 4, 7);

  // kiln: float forward, loss, backward.
  const auto context = model.forward(batch.x.data(), batch.size);
  std::vector<float> dlogits(context.logits().size());
  const double loss = softmax_cross_entropy(context.logits().data(), batch.labels.data(),
                                            batch.size, spec.outputs, dlogits.data(), smoothing);
  std::vector<float> dinput(batch.x.size());
  model.backward(context, dlogits.data(), dinput.data());

  // The reference agrees on the loss, and no ReLU sits close enough to its kink
  // for a step of h to cross it.
  Values params = to_double(model.parameters());
  std::vector<double> x(batch.x.begin(), batch.x.end());
  double smallest = 1e300;
  EXPECT_NEAR(reference_loss(model.parameters(), params, x, batch.labels, smoothing, &smallest),
              loss, 1e-6 * loss);
  ASSERT_GT(smallest, 1e-4) << "a pre-activation sits on the ReLU kink; pick another seed";

  constexpr double h = 1e-6;
  auto central = [&](double& coordinate) {
    const double saved = coordinate;
    coordinate = saved + h;
    const double plus = reference_loss(model.parameters(), params, x, batch.labels, smoothing);
    coordinate = saved - h;
    const double minus = reference_loss(model.parameters(), params, x, batch.labels, smoothing);
    coordinate = saved;
    return (plus - minus) / (2 * h);
  };
  int checked = 0;
  for (std::size_t p = 0; p < params.size(); ++p)
    for (std::size_t k = 0; k < params[p].size(); ++k, ++checked)
      expect_gradient_close(model.parameters()[p].grad[k], central(params[p][k]),
                            model.parameters()[p].name + "[" + std::to_string(k) + "]");
  for (std::size_t k = 0; k < x.size(); ++k, ++checked)
    expect_gradient_close(dinput[k], central(x[k]), "input[" + std::to_string(k) + "]");
  EXPECT_EQ(checked, 5 * 8 + 8 + 8 * 6 + 6 + 6 * 4 + 4 + 4 * 5);
}

INSTANTIATE_TEST_SUITE_P(LabelSmoothing, MlpGradientCheck, ::testing::Values(0.0, 0.1),
                         [](const auto& info) { return info.param == 0.0 ? "None" : "Smoothed"; });

// softmax_cross_entropy alone, differentiated through its own float interface:
// h = 1e-3 on float logits (the actual float step is used as the denominator), so
// the truncation error is h^2 |f'''| / 6 < 1e-7 and the loss itself is computed in
// double; dlogits are float values of size <= 1/batch, good to ~1e-8. Tolerance:
// 2e-6 absolute.
class CrossEntropyGradientCheck : public ::testing::TestWithParam<double> {};

TEST_P(CrossEntropyGradientCheck, MatchesFiniteDifferences) {
  const double smoothing = GetParam();
  constexpr std::int64_t kBatch = 3, kClasses = 5;
  std::vector<float> logits;
  for (int i = 0; i < kBatch * kClasses; ++i)
    logits.push_back(6.0f * uniform01(3, RngStream::Augment, static_cast<std::uint64_t>(i)) - 3.0f);
  const std::vector<std::int32_t> labels{4, 0, 2};
  std::vector<float> dlogits(logits.size());
  softmax_cross_entropy(logits.data(), labels.data(), kBatch, kClasses, dlogits.data(), smoothing);

  for (std::size_t k = 0; k < logits.size(); ++k) {
    std::vector<float> plus = logits, minus = logits;
    plus[k] += 1e-3f;
    minus[k] -= 1e-3f;
    const double numeric =
        (softmax_cross_entropy(plus.data(), labels.data(), kBatch, kClasses, nullptr, smoothing) -
         softmax_cross_entropy(minus.data(), labels.data(), kBatch, kClasses, nullptr, smoothing)) /
        (static_cast<double>(plus[k]) - minus[k]);
    EXPECT_NEAR(dlogits[k], numeric, 2e-6) << "logit " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(LabelSmoothing, CrossEntropyGradientCheck,
                         ::testing::Values(0.0, 0.1, 0.5), [](const auto& info) {
                           return "Eps" + std::to_string(static_cast<int>(info.param * 10));
                         });

}  // namespace
}  // namespace kiln::nn
