// End-to-end sanity: a model, the loss op and an optimizer together learn a small
// separable task: 4x4 images whose class is the quadrant that is bright.
#include <kiln/nn/model.h>
#include <kiln/nn/optimizer.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <vector>

#include "nn/gradient_checker.h"
#include "ops/loss.h"

namespace kiln::nn {
namespace {

using Json = nlohmann::json;

struct Problem {
  Tensor images;  // [N, 1, 4, 4]
  Tensor labels;  // [N] int32
};

// Pixels U[0, 0.5), plus 0.5 in the 2x2 quadrant of the label: the quadrant sums
// separate the classes by a margin.
Problem quadrants(std::int64_t size, std::uint64_t seed) {
  Problem problem{Tensor::empty({size, 1, 4, 4}), Tensor::empty({size}, DType::I32)};
  float* pixels = problem.images.data<float>();
  for (std::int64_t n = 0; n < size; ++n) {
    const auto label = static_cast<std::int64_t>(uniform_below(seed, RngStream::Shuffle, n, 4));
    problem.labels.data<std::int32_t>()[n] = static_cast<std::int32_t>(label);
    for (std::int64_t i = 0; i < 16; ++i) {
      const std::int64_t row = i / 4, column = i % 4;
      const bool bright = (row / 2) * 2 + column / 2 == label;
      pixels[n * 16 + i] =
          0.5f * uniform01(seed, RngStream::Augment, n * 16 + i) + (bright ? 0.5f : 0.0f);
    }
  }
  return problem;
}

struct Evaluation {
  double loss, accuracy;
};

Evaluation evaluate(Model& model, const Problem& problem) {
  ForwardContext context;
  const Tensor logits = model.forward(problem.images, {Mode::Eval, 0, 0}, context);
  Tensor none, loss = Tensor::zeros({1}), correct = Tensor::zeros({1});
  ops::softmax_cross_entropy(logits, problem.labels, 0.0f, 1.0f, none, loss, correct);
  const auto n = static_cast<double>(problem.labels.numel());
  return {loss.to_vector()[0] / n, correct.to_vector()[0] / n};
}

// Mini-batches of 32 in order, `epochs` times.
void train(Model& model, Optimizer& optimizer, const Problem& problem, int epochs) {
  const std::int64_t size = problem.labels.numel(), batch = 32;
  std::int64_t step = 0;
  for (int epoch = 0; epoch < epochs; ++epoch)
    for (std::int64_t begin = 0; begin < size; begin += batch, ++step) {
      ForwardContext context;
      const Tensor logits =
          model.forward(problem.images.rows(begin, begin + batch), {Mode::Train, 5, step}, context);
      Tensor dlogits = Tensor::empty(logits.shape()), loss = Tensor::zeros({1}),
             correct = Tensor::zeros({1});
      ops::softmax_cross_entropy(logits, problem.labels.rows(begin, begin + batch), 0.0f,
                                 1.0f / static_cast<float>(batch), dlogits, loss, correct);
      model.zero_grad();
      model.backward(context, dlogits);
      optimizer.step(model.parameters());
    }
}

const char* kMlp = R"(["flatten", {"linear": {"out": 16}}, "relu", {"linear": {"out": 4}}])";
const char* kCnn = R"([{"conv2d": {"out": 4, "kernel": 3, "padding": 1}}, {"batchnorm2d": {}},
    "relu", {"maxpool2d": {}}, "flatten", {"dropout": {"p": 0.1}}, {"linear": {"out": 4}}])";

void expect_learns(const char* layers, Optimizer& optimizer, int epochs) {
  const Problem problem = quadrants(256, 1);
  Model model = test::build_model(Json::parse(layers), {1, 4, 4}, Device::cpu(), 2);
  const Evaluation before = evaluate(model, problem);
  train(model, optimizer, problem, epochs);  // 8 steps per epoch
  const Evaluation after = evaluate(model, problem);
  EXPECT_LT(before.accuracy, 0.6);
  EXPECT_GE(after.accuracy, 0.95);
  EXPECT_LT(after.loss, 0.5 * before.loss);
  // Held-out images of the same kind.
  EXPECT_GE(evaluate(model, quadrants(128, 2)).accuracy, 0.9);
}

TEST(Training, MlpLearnsQuadrantsWithAdamW) {
  auto optimizer = make_adamw({.lr = 1e-2});
  expect_learns(kMlp, *optimizer, 30);
}

TEST(Training, MlpLearnsQuadrantsWithSgdMomentum) {
  auto optimizer = make_sgd({.lr = 0.1, .momentum = 0.9});
  expect_learns(kMlp, *optimizer, 30);
}

TEST(Training, CnnLearnsQuadrantsWithAdamW) {
  auto optimizer = make_adamw({.lr = 1e-2});
  expect_learns(kCnn, *optimizer, 30);
}

}  // namespace
}  // namespace kiln::nn
