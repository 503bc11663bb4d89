// End-to-end sanity: the MLP, the loss and each optimizer together fit a small
// problem that needs the hidden layer (XOR of the signs of two coordinates, with a
// margin so that it is cleanly separable).
#include <kiln/nn/mlp.h>
#include <kiln/nn/optimizer.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace kiln::nn {
namespace {

struct Problem {
  std::int64_t size = 0;
  std::vector<float> x;
  std::vector<std::int32_t> labels;
};

Problem xor_problem(std::int64_t size) {
  Problem problem;
  for (std::uint64_t draw = 0; problem.size < size; draw += 2) {
    const float a = 2 * uniform01(3, RngStream::Augment, draw) - 1;
    const float b = 2 * uniform01(3, RngStream::Augment, draw + 1) - 1;
    if (std::abs(a) < 0.1f || std::abs(b) < 0.1f) continue;
    problem.x.insert(problem.x.end(), {a, b});
    problem.labels.push_back((a > 0) != (b > 0) ? 1 : 0);
    ++problem.size;
  }
  return problem;
}

double accuracy(const Mlp& model, const Problem& problem) {
  const auto context = model.forward(problem.x.data(), problem.size);
  int correct = 0;
  for (std::int64_t i = 0; i < problem.size; ++i) {
    const float* z = context.logits().data() + 2 * i;
    correct += (z[1] > z[0] ? 1 : 0) == problem.labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(problem.size);
}

// Full-batch training; returns the final loss.
double train(Mlp& model, Optimizer& optimizer, const Problem& problem, int steps) {
  std::vector<float> dlogits(static_cast<std::size_t>(problem.size * 2));
  double loss = 0.0;
  for (int step = 0; step < steps; ++step) {
    const auto context = model.forward(problem.x.data(), problem.size);
    loss = softmax_cross_entropy(context.logits().data(), problem.labels.data(), problem.size, 2,
                                 dlogits.data());
    model.backward(context, dlogits.data());
    optimizer.step(model.parameters());
  }
  return loss;
}

TEST(Training, AdamWFitsXor) {
  const Problem problem = xor_problem(256);
  Mlp model(MlpSpec{2, {32, 32}, 2}, 1);
  const double before = accuracy(model, problem);
  auto optimizer = make_adamw({.lr = 1e-2});
  const double loss = train(model, *optimizer, problem, 300);
  EXPECT_LT(before, 0.8);
  EXPECT_EQ(accuracy(model, problem), 1.0);
  EXPECT_LT(loss, 0.05);
}

TEST(Training, SgdWithMomentumFitsXor) {
  const Problem problem = xor_problem(256);
  Mlp model(MlpSpec{2, {32, 32}, 2}, 1);
  auto optimizer = make_sgd({.lr = 0.1, .momentum = 0.9});
  const double loss = train(model, *optimizer, problem, 300);
  EXPECT_EQ(accuracy(model, problem), 1.0);
  EXPECT_LT(loss, 0.05);
}

}  // namespace
}  // namespace kiln::nn
