// The trainer's losses and optimizers are descriptors chosen by name in one place
// (engine/src/train/objectives.cpp).
#include <kiln/error.h>
#include <kiln/train/objectives.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::train {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Objectives, NamesInTheOrderTheTrainStageOffersThem) {
  EXPECT_THAT(loss_names(), ElementsAre("cross_entropy", "mse"));
  EXPECT_THAT(optimizer_names(), ElementsAre("adamw", "sgd"));
}

TEST(Objectives, DescriptorsSayWhatTheDataAndSettingsMean) {
  EXPECT_TRUE(loss_type("cross_entropy").classifies);
  EXPECT_FALSE(loss_type("mse").classifies);
  EXPECT_FALSE(optimizer_type("adamw").momentum);
  EXPECT_TRUE(optimizer_type("sgd").momentum);
}

TEST(Objectives, OptimizersAreMadeWithTheirLearningRate) {
  OptimizerConfig config;
  config.momentum = 0.5;
  EXPECT_DOUBLE_EQ(optimizer_type("sgd").make(config, 0.25)->lr(), 0.25);
  EXPECT_DOUBLE_EQ(optimizer_type("adamw").make(config, 3e-4)->lr(), 3e-4);
}

TEST(Objectives, MeanSquaredErrorSumsAndScalesItsGradient) {
  const Tensor out = Tensor::from({1.0f, 2.0f, 3.0f, 4.0f}, {2, 2});
  const Tensor target = Tensor::from({1.0f, 0.0f, 3.0f, 6.0f}, {2, 2});
  Tensor dout = Tensor::empty({2, 2}), loss = Tensor::zeros({1}), correct = Tensor::zeros({1});
  loss_type("mse").compute(out, target, 0.0f, 0.5f, dout, loss, correct);
  EXPECT_GT(loss.to_vector()[0], 0.0f);
  EXPECT_EQ(dout.to_vector()[0], 0.0f);  // no error, no gradient
  EXPECT_EQ(correct.to_vector()[0], 0.0f);
}

TEST(Objectives, AnUnknownNameListsTheKnownOnes) {
  try {
    optimizer_type("lion");
    FAIL() << "made an optimizer kiln does not know";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("optimizer 'lion': expected adamw or sgd"));
  }
  EXPECT_THROW(loss_type("hinge"), ConfigError);
}

}  // namespace
}  // namespace kiln::train
