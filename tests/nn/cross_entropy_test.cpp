#include <kiln/error.h>
#include <kiln/nn/mlp.h>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace kiln::nn {
namespace {

TEST(SoftmaxCrossEntropy, EqualLogitsCostLogClasses) {
  const std::vector<float> logits{0, 0, 0, 0};
  const std::vector<std::int32_t> labels{2};
  std::vector<float> dlogits(4);
  EXPECT_NEAR(softmax_cross_entropy(logits.data(), labels.data(), 1, 4, dlogits.data()),
              std::log(4.0), 1e-12);
  EXPECT_FLOAT_EQ(dlogits[0], 0.25f);
  EXPECT_FLOAT_EQ(dlogits[2], -0.75f);
  // Smoothing 0.2 over 4 classes: target 0.05 off, 0.85 on; the loss stays log 4
  // because every log-probability is -log 4.
  EXPECT_NEAR(softmax_cross_entropy(logits.data(), labels.data(), 1, 4, dlogits.data(), 0.2),
              std::log(4.0), 1e-12);
  EXPECT_FLOAT_EQ(dlogits[0], 0.2f);
  EXPECT_FLOAT_EQ(dlogits[2], -0.6f);
}

TEST(SoftmaxCrossEntropy, HandComputedBatchMeanAndGradient) {
  // Row 0: logits (ln 1, ln 3) -> p = (1/4, 3/4), label 1: -ln(3/4).
  // Row 1: logits (0, ln 4), label 0: p0 = 1/5: -ln(1/5).
  const std::vector<float> logits{0.0f, std::log(3.0f), 0.0f, std::log(4.0f)};
  const std::vector<std::int32_t> labels{1, 0};
  std::vector<float> dlogits(4);
  const double loss = softmax_cross_entropy(logits.data(), labels.data(), 2, 2, dlogits.data());
  EXPECT_NEAR(loss, (-std::log(0.75) - std::log(0.2)) / 2, 1e-7);
  EXPECT_NEAR(dlogits[0], 0.25 / 2, 1e-7);
  EXPECT_NEAR(dlogits[1], (0.75 - 1) / 2, 1e-7);
  EXPECT_NEAR(dlogits[2], (0.2 - 1) / 2, 1e-7);
  EXPECT_NEAR(dlogits[3], 0.8 / 2, 1e-7);
  // Smoothing 0.1 over 2 classes: targets 0.95 / 0.05.
  const double smoothed =
      softmax_cross_entropy(logits.data(), labels.data(), 2, 2, dlogits.data(), 0.1);
  EXPECT_NEAR(smoothed,
              (-0.95 * std::log(0.75) - 0.05 * std::log(0.25) - 0.95 * std::log(0.2) -
               0.05 * std::log(0.8)) /
                  2,
              1e-7);
  EXPECT_NEAR(dlogits[1], (0.75 - 0.95) / 2, 1e-7);
}

TEST(SoftmaxCrossEntropy, HugeLogitsStayFinite) {
  const std::vector<float> logits{1000.0f, 1000.0f, -1000.0f, 1000.0f, 0.0f, 0.0f};
  const std::vector<std::int32_t> labels{0, 2};
  std::vector<float> dlogits(6);
  // Row 0: two tied maxima -> log 2. Row 1: the label's logit is 1000 below the max.
  const double loss = softmax_cross_entropy(logits.data(), labels.data(), 2, 3, dlogits.data());
  EXPECT_NEAR(loss, (std::log(2.0) + 1000.0) / 2, 1e-9);
  for (const float d : dlogits) EXPECT_TRUE(std::isfinite(d));
  EXPECT_FLOAT_EQ(dlogits[0], -0.25f);
  EXPECT_FLOAT_EQ(dlogits[2], 0.0f);
  EXPECT_FLOAT_EQ(dlogits[3], 0.5f);
  EXPECT_FLOAT_EQ(dlogits[5], -0.5f);
}

TEST(SoftmaxCrossEntropy, RejectsLabelsOutOfRange) {
  const std::vector<float> logits(6, 0.0f);
  for (const std::int32_t bad : {-1, 3}) {
    const std::vector<std::int32_t> labels{0, bad};
    try {
      softmax_cross_entropy(logits.data(), labels.data(), 2, 3, nullptr);
      ADD_FAILURE() << "label " << bad << " accepted";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("label " + std::to_string(bad) + " at batch row 1"),
                std::string::npos)
          << e.what();
    }
  }
  const std::vector<std::int32_t> labels{0, 1};
  EXPECT_THROW(softmax_cross_entropy(logits.data(), labels.data(), 2, 3, nullptr, 1.5),
               ConfigError);
  EXPECT_THROW(softmax_cross_entropy(logits.data(), labels.data(), 2, 3, nullptr, -0.1),
               ConfigError);
}

TEST(SoftmaxCrossEntropy, EmptyBatchCostsNothing) {
  EXPECT_EQ(softmax_cross_entropy(nullptr, nullptr, 0, 3, nullptr), 0.0);
}

}  // namespace
}  // namespace kiln::nn
