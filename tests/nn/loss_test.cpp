// The losses (ops/loss.h): values against a double-precision computation written
// here, gradients against finite differences of the op's own loss.
//
// Tolerances: the op sums the loss in double and stores it as float, so a loss of
// ~10 carries ~1e-6 rounding; the central difference with h = 1e-2 divides that by
// 2h (5e-5) and adds a truncation error h^2 |L'''| / 6 < 2e-5 (softmax and squares
// have bounded third derivatives). Hence |analytic - numeric| <= 1e-4 + 1e-3 |numeric|.
#include <kiln/error.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "nn/gradient_checker.h"
#include "ops/loss.h"

namespace kiln::nn {
namespace {

using test::random_tensor;

// Central differences of `loss` (which reads the host tensor `input`) in every
// element of `input`, against `analytic`.
void expect_gradient_matches(Tensor& input, const std::vector<float>& analytic,
                             const std::function<double()>& loss) {
  constexpr double kStep = 1e-2;
  float* v = input.data<float>();
  for (std::int64_t i = 0; i < input.numel(); ++i) {
    const float original = v[i];
    const auto plus = static_cast<float>(original + kStep);
    const auto minus = static_cast<float>(original - kStep);
    v[i] = plus;
    const double up = loss();
    v[i] = minus;
    const double down = loss();
    v[i] = original;
    const double numeric = (up - down) / (static_cast<double>(plus) - minus);
    EXPECT_NEAR(analytic[static_cast<std::size_t>(i)], numeric, 1e-4 + 1e-3 * std::abs(numeric))
        << i;
  }
}

Tensor random_labels(std::int64_t batch, std::int64_t classes, std::uint64_t seed) {
  Tensor labels = Tensor::empty({batch}, DType::I32);
  for (std::int64_t i = 0; i < batch; ++i)
    labels.data<std::int32_t>()[i] = static_cast<std::int32_t>(
        uniform_below(seed, RngStream::Shuffle, static_cast<std::uint64_t>(i),
                      static_cast<std::uint64_t>(classes)));
  return labels;
}

struct CrossEntropyResult {
  float loss = 0, correct = 0;
  std::vector<float> dlogits;
};

// The op on `device`, from and to host tensors.
CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& labels, float smoothing,
                                 float grad_scale, bool with_grad = true,
                                 Device device = Device::cpu()) {
  Tensor dlogits = with_grad ? Tensor::empty(logits.shape(), DType::F32, device) : Tensor();
  Tensor loss = Tensor::zeros({1}, DType::F32, device);
  Tensor correct = Tensor::zeros({1}, DType::F32, device);
  ops::softmax_cross_entropy(logits.to(device), labels.to(device), smoothing, grad_scale, dlogits,
                             loss, correct);
  return {test::host_values(loss)[0], test::host_values(correct)[0],
          with_grad ? test::host_values(dlogits) : std::vector<float>{}};
}

// sum over rows of -sum_k target_k log softmax(z)_k, in double, straight from the definition.
double reference_cross_entropy(const std::vector<float>& z, const Tensor& labels,
                               std::int64_t classes, double smoothing) {
  double total = 0.0;
  for (std::int64_t row = 0; row < labels.numel(); ++row) {
    const float* r = z.data() + row * classes;
    double normaliser = 0.0;
    for (std::int64_t k = 0; k < classes; ++k) normaliser += std::exp(static_cast<double>(r[k]));
    for (std::int64_t k = 0; k < classes; ++k) {
      const double target = smoothing / static_cast<double>(classes) +
                            (k == labels.data<std::int32_t>()[row] ? 1.0 - smoothing : 0.0);
      total -= target * std::log(std::exp(static_cast<double>(r[k])) / normaliser);
    }
  }
  return total;
}

// Parametrized over (device, label smoothing).
class SoftmaxCrossEntropy : public ::testing::TestWithParam<std::tuple<Device, float>> {
 protected:
  void SetUp() override {
    if (const std::string why = test::skip_reason(device()); !why.empty()) GTEST_SKIP() << why;
  }
  Device device() const { return std::get<0>(GetParam()); }
  float smoothing() const { return std::get<1>(GetParam()); }
  CrossEntropyResult run(const Tensor& logits, const Tensor& labels, float grad_scale,
                         bool with_grad = true) const {
    return cross_entropy(logits, labels, smoothing(), grad_scale, with_grad, device());
  }
};

TEST_P(SoftmaxCrossEntropy, LossMatchesTheDefinition) {
  const float smoothing = this->smoothing();
  const Tensor logits = random_tensor({6, 5}, 1, -3.0f, 3.0f);
  const Tensor labels = random_labels(6, 5, 2);
  const double expected = reference_cross_entropy(logits.to_vector(), labels, 5, smoothing);
  EXPECT_NEAR(run(logits, labels, 1.0f).loss, expected, 1e-6 * expected);
}

TEST_P(SoftmaxCrossEntropy, GradientMatchesFiniteDifferences) {
  Tensor logits = random_tensor({5, 4}, 3, -2.0f, 2.0f);
  const Tensor labels = random_labels(5, 4, 4);
  expect_gradient_matches(logits, run(logits, labels, 1.0f).dlogits,
                          [&] { return run(logits, labels, 1.0f, false).loss; });
}

TEST_P(SoftmaxCrossEntropy, GradScaleScalesOnlyTheGradient) {
  const Tensor logits = random_tensor({4, 3}, 5, -2.0f, 2.0f);
  const Tensor labels = random_labels(4, 3, 6);
  const CrossEntropyResult one = run(logits, labels, 1.0f);
  const CrossEntropyResult quarter = run(logits, labels, 0.25f);
  EXPECT_EQ(one.loss, quarter.loss);
  for (std::size_t i = 0; i < one.dlogits.size(); ++i)
    EXPECT_FLOAT_EQ(quarter.dlogits[i], 0.25f * one.dlogits[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(DevicesAndSmoothing, SoftmaxCrossEntropy,
                         ::testing::Combine(::testing::ValuesIn(test::devices_under_test()),
                                            ::testing::Values(0.0f, 0.1f)),
                         [](const auto& info) {
                           return (std::get<0>(info.param).is_cpu() ? std::string("cpu")
                                                                    : std::string("cuda")) +
                                  (std::get<1>(info.param) == 0.0f ? "_no_smoothing"
                                                                   : "_smoothing_0_1");
                         });

TEST(SoftmaxCrossEntropyValues, HandComputedRows) {
  // Equal logits: the loss is log C whatever the smoothing; the gradient 1/C - target.
  const Tensor flat = Tensor::from({0, 0, 0, 0}, {1, 4});
  Tensor label = Tensor::empty({1}, DType::I32);
  label.data<std::int32_t>()[0] = 2;
  const CrossEntropyResult r = cross_entropy(flat, label, 0.2f, 1.0f);
  EXPECT_NEAR(r.loss, std::log(4.0), 1e-6);
  EXPECT_NEAR(r.dlogits[2], 0.25 - (0.8 + 0.05), 1e-7);
  EXPECT_NEAR(r.dlogits[0], 0.25 - 0.05, 1e-7);
  // logits (1, 2, 3), label 0, s = 0.1: lse = 3 + log(1 + e^-1 + e^-2) = 3.4076059644;
  // targets 0.9333.., 0.0333.., 0.0333..: loss = 0.93333 * 2.4076059644
  // + 0.03333 * (1.4076059644 + 0.4076059644) = 2.3076059644.
  const Tensor row = Tensor::from({1, 2, 3}, {1, 3});
  label.data<std::int32_t>()[0] = 0;
  EXPECT_NEAR(cross_entropy(row, label, 0.1f, 1.0f).loss, 2.3076059644, 1e-6);
  EXPECT_NEAR(cross_entropy(row, label, 0.0f, 1.0f).loss, 2.4076059644, 1e-6);
}

TEST(SoftmaxCrossEntropyValues, CountsRowsWhoseLargestLogitIsTheLabel) {
  const Tensor logits = Tensor::from({3, 1, 0, /**/ 0, 5, 1, /**/ 2, 1, 0, /**/ 0, 0, 9}, {4, 3});
  Tensor labels = Tensor::empty({4}, DType::I32);
  const std::int32_t values[] = {0, 1, 2, 2};
  std::copy(values, values + 4, labels.data<std::int32_t>());
  EXPECT_EQ(cross_entropy(logits, labels, 0.0f, 1.0f).correct, 3.0f);
}

TEST(SoftmaxCrossEntropyValues, AccumulatesIntoTheLossSum) {
  const Tensor logits = random_tensor({3, 4}, 7);
  const Tensor labels = random_labels(3, 4, 8);
  Tensor dlogits, loss = Tensor::full({1}, 1.5f), correct = Tensor::zeros({1});
  ops::softmax_cross_entropy(logits, labels, 0.0f, 1.0f, dlogits, loss, correct);
  const double expected = reference_cross_entropy(logits.to_vector(), labels, 4, 0.0);
  EXPECT_NEAR(loss.to_vector()[0], 1.5 + expected, 1e-5);
}

TEST(SoftmaxCrossEntropyValues, HugeLogitsStayFinite) {
  // Row 0: two tied maxima, log 2. Row 1: the label's logit is 1000 below the maximum.
  const Tensor logits = Tensor::from({1000, 1000, -1000, /**/ 1000, 0, 0}, {2, 3});
  Tensor labels = Tensor::empty({2}, DType::I32);
  labels.data<std::int32_t>()[0] = 0;
  labels.data<std::int32_t>()[1] = 2;
  const CrossEntropyResult r = cross_entropy(logits, labels, 0.0f, 0.5f);
  EXPECT_NEAR(r.loss, std::log(2.0) + 1000.0, 1e-4);
  EXPECT_EQ(r.dlogits, (std::vector<float>{-0.25f, 0.25f, 0.0f, 0.5f, 0.0f, -0.5f}));
}

TEST(SoftmaxCrossEntropyValues, EmptyBatchCostsNothing) {
  const CrossEntropyResult r =
      cross_entropy(Tensor::empty({0, 3}), Tensor::empty({0}, DType::I32), 0.1f, 1.0f);
  EXPECT_EQ(r.loss, 0.0f);
  EXPECT_EQ(r.correct, 0.0f);
  EXPECT_TRUE(r.dlogits.empty());
}

TEST(SoftmaxCrossEntropyValues, BadArgumentsAreErrors) {
  const Tensor logits = random_tensor({2, 3}, 9);
  Tensor labels = Tensor::zeros({2}, DType::I32);
  Tensor dlogits, loss = Tensor::zeros({1}), correct = Tensor::zeros({1});
  EXPECT_THROW(ops::softmax_cross_entropy(logits, labels, 1.0f, 1.0f, dlogits, loss, correct),
               ConfigError);
  EXPECT_THROW(ops::softmax_cross_entropy(logits, labels, -0.1f, 1.0f, dlogits, loss, correct),
               ConfigError);
  labels.data<std::int32_t>()[1] = 3;
  try {
    ops::check_labels(labels, 3);
    ADD_FAILURE() << "label 3 of 3 classes accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("label 3 at batch row 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ops::softmax_cross_entropy(logits, Tensor::zeros({3}, DType::I32), 0.0f, 1.0f,
                                          dlogits, loss, correct),
               InternalError);
}

struct MseResult {
  float loss = 0;
  std::vector<float> dpred;
};

MseResult mse(const Tensor& pred, const Tensor& target, float grad_scale,
              Device device = Device::cpu()) {
  Tensor dpred = Tensor::empty(pred.shape(), DType::F32, device);
  Tensor loss = Tensor::zeros({1}, DType::F32, device);
  ops::mean_squared_error(pred.to(device), target.to(device), grad_scale, dpred, loss);
  return {test::host_values(loss)[0], test::host_values(dpred)};
}

class MeanSquaredError : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override {
    if (const std::string why = test::skip_reason(GetParam()); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_P(MeanSquaredError, LossIsTheSumOfRowMeans) {
  const Tensor pred = Tensor::from({1, 2, 3, /**/ 0, 0, 0}, {2, 3});
  const Tensor target = Tensor::from({1, 0, 0, /**/ 1, 1, -1}, {2, 3});
  // Row 0: (0 + 4 + 9) / 3; row 1: (1 + 1 + 1) / 3.
  const MseResult r = mse(pred, target, 0.5f, GetParam());
  EXPECT_NEAR(r.loss, 16.0 / 3.0, 1e-6);
  // 2 (p - t) / F * grad_scale.
  const std::vector<float> expected{0, 2.0f / 3, 1, -1.0f / 3, -1.0f / 3, 1.0f / 3};
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ(r.dpred[i], expected[i]) << i;
}

TEST_P(MeanSquaredError, GradientMatchesFiniteDifferences) {
  Tensor pred = random_tensor({4, 5}, 10, -2.0f, 2.0f);
  const Tensor target = random_tensor({4, 5}, 11, -2.0f, 2.0f);
  expect_gradient_matches(pred, mse(pred, target, 1.0f, GetParam()).dpred,
                          [&] { return mse(pred, target, 1.0f, GetParam()).loss; });
}

INSTANTIATE_TEST_SUITE_P(Devices, MeanSquaredError, ::testing::ValuesIn(test::devices_under_test()),
                         test::device_test_name);

}  // namespace
}  // namespace kiln::nn
