// TPE's Parzen estimator and truncated normal: Optuna's bandwidth, weight and
// smoothing rules on hand-made observations, log densities against Optuna's own
// estimator, and the truncated normal against high-precision references.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "sweep/parzen_estimator.h"
#include "sweep/truncnorm.h"

namespace kiln::sweep {
namespace {

TEST(ParzenEstimatorTest, WeightsAreFlatForTheNewest25AndRampForOlder) {
  EXPECT_EQ(tpe_weights(3), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(tpe_weights(25), std::vector<double>(25, 1.0));
  const auto w26 = tpe_weights(26);
  ASSERT_EQ(w26.size(), 26u);
  EXPECT_DOUBLE_EQ(w26[0], 1.0 / 26);  // linspace(1/26, 1, 1) = [1/26]
  EXPECT_DOUBLE_EQ(w26[1], 1.0);
  const auto w28 = tpe_weights(28);  // linspace(1/28, 1, 3) then 25 ones
  ASSERT_EQ(w28.size(), 28u);
  EXPECT_DOUBLE_EQ(w28[0], 1.0 / 28);
  EXPECT_DOUBLE_EQ(w28[1], 0.5178571428571429);
  EXPECT_DOUBLE_EQ(w28[2], 1.0);
  EXPECT_DOUBLE_EQ(w28[27], 1.0);
}

// Observations 2, 5, 6 on [0, 10]: gaps with the ends give 3, 3, 4; endpoints off
// makes the outer ones their inner gap: 3 (5 - 2) and 1 (6 - 5); the magic clip
// raises sigma to at least 10 / min(100, 1 + 4 kernels) = 2: {3, 3, 2}, then the
// prior at the centre with the whole range.
TEST(ParzenEstimatorTest, NumericBandwidthsFollowOptuna) {
  const auto kernels = std::get<NumericKernels>(
      parzen_kernels(FloatDistribution{0, 10}, std::vector<double>{2, 5, 6}));
  EXPECT_EQ(kernels.mus, (std::vector<double>{2, 5, 6, 5}));
  EXPECT_EQ(kernels.sigmas, (std::vector<double>{3, 3, 2, 10}));
  // An int range widens by half a step each side: [0.5, 10.5]; one observation at
  // 3 takes its larger gap, 7.5 (the clip floor is 10 / 3).
  const auto ints =
      std::get<NumericKernels>(parzen_kernels(IntDistribution{1, 10}, std::vector<double>{3}));
  EXPECT_EQ(ints.low, 0.5);
  EXPECT_EQ(ints.high, 10.5);
  EXPECT_EQ(ints.mus, (std::vector<double>{3, 5.5}));
  EXPECT_EQ(ints.sigmas, (std::vector<double>{7.5, 10}));
  // A log range works on logs: observations 1e-3 and 1e-1 on [1e-4, 1].
  const auto logs = std::get<NumericKernels>(
      parzen_kernels(FloatDistribution{1e-4, 1, true}, std::vector<double>{1e-3, 1e-1}));
  const double decade = std::log(10.0);
  EXPECT_NEAR(logs.low, -4 * decade, 1e-12);
  EXPECT_NEAR(logs.mus[0], -3 * decade, 1e-12);
  EXPECT_NEAR(logs.sigmas[0], 2 * decade, 1e-12);  // inner gap, above the clip 4/4 decades
  EXPECT_NEAR(logs.sigmas[1], 2 * decade, 1e-12);
  EXPECT_NEAR(logs.mus[2], -2 * decade, 1e-12);
}

// Choices observed 0, 0, 2 of 3: each of 4 kernels spreads 1/4 over the choices, an
// observation adds 1 to its own, rows normalized: (1.25, .25, .25) / 1.75.
TEST(ParzenEstimatorTest, CategoricalKernelsSmoothTheCounts) {
  const auto kernels = std::get<CategoricalKernels>(
      parzen_kernels(CategoricalDistribution{{"a", "b", "c"}}, std::vector<double>{0, 0, 2}));
  ASSERT_EQ(kernels.probabilities.size(), 4u);
  EXPECT_NEAR(kernels.probabilities[0][0], 1.25 / 1.75, 1e-15);
  EXPECT_NEAR(kernels.probabilities[1][1], 0.25 / 1.75, 1e-15);
  EXPECT_NEAR(kernels.probabilities[2][2], 1.25 / 1.75, 1e-15);
  EXPECT_NEAR(kernels.probabilities[3][1], 1.0 / 3, 1e-15);
  const ParzenEstimator estimator({CategoricalDistribution{{"a", "b", "c"}}}, {{0, 0, 2}});
  EXPECT_EQ(estimator.weights(), (std::vector<double>{0.25, 0.25, 0.25, 0.25}));
  // P(a) = (2 * 1.25/1.75 + 0.25/1.75 + 1/3) / 4
  EXPECT_NEAR(estimator.log_pdf({0}), std::log((2.75 / 1.75 + 1.0 / 3) / 4), 1e-14);
}

// Reference numbers from Optuna's own estimator (optuna/samplers/_tpe/
// parzen_estimator.py at optuna commit 1d8ce7b, run with numpy 1.24, default
// parameters) on the same observations and points.
const std::vector<Distribution> kOptunaSpace = {FloatDistribution{1e-5, 1, true},
                                                IntDistribution{1, 20},
                                                CategoricalDistribution{{"a", "b", "c", "d"}},
                                                FloatDistribution{0, 0.5, false, 0.1},
                                                IntDistribution{1, 64, true},
                                                FloatDistribution{-5, 5}};
const std::vector<std::vector<double>> kOptunaObservations = {
    {1e-3, 3e-2, 2e-4, 5e-3}, {3, 12, 7, 19}, {0, 2, 2, 3},
    {0.1, 0.3, 0.0, 0.5},     {4, 32, 1, 9},  {-4, 0.5, 1, 3}};
const std::vector<std::vector<double>> kOptunaPoints = {
    {1e-4, 2e-3, 0.5}, {1, 10, 20}, {0, 2, 1}, {0.0, 0.2, 0.5}, {1, 5, 64}, {-5, 0.7, 4.9}};

void expect_near_relative(double actual, double expected, const std::string& what) {
  EXPECT_NEAR(actual, expected, 1e-12 * std::max(1.0, std::abs(expected))) << what;
}

TEST(ParzenEstimatorTest, MatchesOptunasParzenEstimator) {
  // Bandwidths: the log range, the int range (widened by 0.5), the stepped float.
  const std::vector<std::vector<double>> sigmas = {
      {1.9188209108283714, 1.9188209108283714, 1.9188209108283714, 1.9188209108283714,
       11.512925464970229},
      {4, 7, 5, 7, 20},
      {},
      {0.19999999999999998, 0.2, 0.10000000000000002, 0.2, 0.6000000000000001},
      {1.3862943611198906, 1.2685113254635074, 1.3862943611198906, 1.2685113254635074,
       4.859812404361672},
      {4.5, 4.5, 2, 2, 10}};
  // log l(x) of each parameter alone at the three points.
  const std::vector<std::vector<double>> univariate = {
      {-2.4667258784873916, -2.0248675498428166, -3.3904128801013593},
      {-3.06682990183347, -2.9418090153004623, -3.3127249214837247},
      {-1.3862943611198904, -1.0185695809945732, -1.9740810260220096},
      {-1.575410973897477, -1.826958150414808, -2.0119830830416343},
      {-1.676428651581364, -3.0379083984940554, -6.09518126365014},
      {-2.7974504082777996, -2.0548223056698616, -2.6000508207657873}};
  for (std::size_t p = 0; p < kOptunaSpace.size(); ++p) {
    const ParzenKernels kernels = parzen_kernels(kOptunaSpace[p], kOptunaObservations[p]);
    if (const auto* numeric = std::get_if<NumericKernels>(&kernels))
      for (std::size_t k = 0; k < sigmas[p].size(); ++k)
        expect_near_relative(numeric->sigmas[k], sigmas[p][k], "sigma " + std::to_string(p));
    const ParzenEstimator alone({kOptunaSpace[p]}, {kOptunaObservations[p]});
    for (std::size_t i = 0; i < 3; ++i)
      expect_near_relative(alone.log_pdf({kOptunaPoints[p][i]}), univariate[p][i],
                           "parameter " + std::to_string(p) + " point " + std::to_string(i));
  }
  // All six jointly (the multivariate estimator).
  const ParzenEstimator joint(kOptunaSpace, kOptunaObservations);
  const std::vector<double> expected = {-11.364104632352078, -13.215537890052103,
                                        -18.083455480072374};
  for (std::size_t i = 0; i < 3; ++i) {
    std::vector<double> point;
    for (const auto& values : kOptunaPoints) point.push_back(values[i]);
    expect_near_relative(joint.log_pdf(point), expected[i], "joint point " + std::to_string(i));
  }
}

// 30 observations: the 5 oldest get the ramp linspace(1/30, 1, 5), then weights are
// normalized with the prior's 1.
TEST(ParzenEstimatorTest, MatchesOptunaWithRampedWeights) {
  const std::vector<double> observations = {
      0.48813503927324753, 2.151893663724195,   1.027633760716439,    0.4488318299689684,
      -0.7634520066109527, 1.4589411306665614,  -0.6241278873730751,  3.917730007820797,
      4.636627605010293,   -1.1655848117422227, 2.917250380826646,    0.28894919752904435,
      0.6804456109393229,  4.25596638292661,    -4.289639418021131,   -4.1287070029845925,
      -4.797816025596743,  3.32619845547938,    2.7815675094985046,   3.700121482468191,
      4.786183422327641,   2.9915856421672355,  -0.38520637747068154, 2.805291762864554,
      -3.817255741310668,  1.3992102132752384,  -3.566467125909536,   4.446689170495839,
      0.21848321750071698, -0.8533806000947646};
  const ParzenEstimator estimator({FloatDistribution{-5, 5}}, {observations});
  ASSERT_EQ(estimator.weights().size(), 31u);
  expect_near_relative(estimator.weights()[0], 0.00116618075801749, "weight 0");
  expect_near_relative(estimator.weights()[1], 0.00962099125364431, "weight 1");
  expect_near_relative(estimator.weights()[4], 0.03498542274052478, "weight 4");
  expect_near_relative(estimator.weights()[30], 0.03498542274052478, "prior weight");
  expect_near_relative(estimator.log_pdf({-2.0}), -4.09660332813627, "x = -2");
  expect_near_relative(estimator.log_pdf({0.0}), -2.189627683142662, "x = 0");
  expect_near_relative(estimator.log_pdf({3.3}), -1.8936378435626398, "x = 3.3");
}

// References from mpmath at 40 digits.
TEST(TruncnormTest, MatchesHighPrecisionReferences) {
  EXPECT_NEAR(truncnorm::log_ndtr(0), std::log(0.5), 1e-15);
  EXPECT_NEAR(truncnorm::log_ndtr(-5), -15.064998393988725, 1e-12);
  EXPECT_NEAR(truncnorm::log_ndtr(-30), -454.3212439563432, 1e-10);
  EXPECT_NEAR(truncnorm::log_ndtr(7), -1.2798125438866540e-12, 1e-24);
  EXPECT_NEAR(truncnorm::log_gauss_mass(-1, 1), -0.38171514630212607, 1e-14);
  EXPECT_NEAR(truncnorm::log_gauss_mass(2, 3), -3.8443534263342056, 1e-12);
  EXPECT_NEAR(truncnorm::log_gauss_mass(-40, -38), -726.5572160188201, 1e-9);
  EXPECT_NEAR(truncnorm::ppf(0.975, -10, 10), 1.9599639845400542, 1e-8);
  EXPECT_NEAR(truncnorm::ppf(0.3, 0.5, 2), 0.7627665499613407, 1e-8);
  EXPECT_NEAR(truncnorm::ppf(0.5, -8, -6), -6.111564961205269, 1e-7);
  EXPECT_NEAR(truncnorm::ppf(0.25, 6, 9), 6.046541477810142, 1e-7);
  EXPECT_NEAR(truncnorm::logpdf(0.3, -1, 1, 0, 1), -0.5822233869025467, 1e-14);
  EXPECT_NEAR(truncnorm::logpdf(2, -1, 2, 1, 0.5), -2.025625058320265, 1e-14);
  EXPECT_EQ(truncnorm::logpdf(2.1, -1, 2, 1, 0.5), -INFINITY);
}

}  // namespace
}  // namespace kiln::sweep
