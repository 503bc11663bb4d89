// Optimizer steps against hand computations and torch.optim; gradient clipping.
#include <kiln/error.h>
#include <kiln/nn/optimizer.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <vector>

#include "formats/python_check.h"
#include "nn/gradient_checker.h"

namespace kiln::nn {
namespace {

Parameter parameter(const std::string& name, const std::vector<float>& values) {
  const Shape shape{static_cast<std::int64_t>(values.size())};
  return {name, Tensor::from(values, shape), Tensor::zeros(shape)};
}

std::vector<Parameter*> pointers(std::vector<Parameter>& parameters) {
  std::vector<Parameter*> out;
  for (Parameter& p : parameters) out.push_back(&p);
  return out;
}

// One scalar parameter p = 1 stepped with the given gradients; returns p after each step.
std::vector<float> scalar_steps(Optimizer& optimizer, const std::vector<float>& grads) {
  Parameter p = parameter("p", {1.0f});
  std::vector<float> values;
  for (const float g : grads) {
    p.grad.fill(g);
    optimizer.step({&p});
    values.push_back(p.value.to_vector()[0]);
  }
  return values;
}

// Hand computations, p0 = 1, g = 0.5 on both steps, lr = 0.1 (float results, so 1e-6).
TEST(Sgd, PlainStepsMatchHandComputation) {
  const auto optimizer = make_sgd({.lr = 0.1});
  const auto p = scalar_steps(*optimizer, {0.5f, 0.5f});
  EXPECT_NEAR(p[0], 0.95, 1e-6);  // 1 - 0.1 * 0.5
  EXPECT_NEAR(p[1], 0.90, 1e-6);
}

TEST(Sgd, MomentumStepsMatchHandComputation) {
  const auto optimizer = make_sgd({.lr = 0.1, .momentum = 0.9});
  const auto p = scalar_steps(*optimizer, {0.5f, 0.5f});
  EXPECT_NEAR(p[0], 0.95, 1e-6);   // b = g = 0.5 on the first step
  EXPECT_NEAR(p[1], 0.855, 1e-6);  // b = 0.9 * 0.5 + 0.5 = 0.95; p = 0.95 - 0.095
}

TEST(Sgd, NesterovStepsMatchHandComputation) {
  const auto optimizer = make_sgd({.lr = 0.1, .momentum = 0.9, .nesterov = true});
  const auto p = scalar_steps(*optimizer, {0.5f, 0.5f});
  EXPECT_NEAR(p[0], 0.905, 1e-6);   // b = 0.5; d = 0.5 + 0.9 * 0.5 = 0.95
  EXPECT_NEAR(p[1], 0.7695, 1e-6);  // b = 0.95; d = 0.5 + 0.855 = 1.355
}

TEST(Sgd, WeightDecayStepsMatchHandComputation) {
  const auto optimizer = make_sgd({.lr = 0.1, .weight_decay = 0.1});
  const auto p = scalar_steps(*optimizer, {0.5f, 0.5f});
  EXPECT_NEAR(p[0], 0.94, 1e-6);    // d = 0.5 + 0.1 * 1
  EXPECT_NEAR(p[1], 0.8806, 1e-6);  // d = 0.5 + 0.1 * 0.94 = 0.594
}

TEST(AdamW, TwoStepsMatchHandComputation) {
  // lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.1; g = 0.5 then -0.25.
  // Step 1: p = 0.99; m = 0.05, v = 2.5e-4; mhat = 0.5, vhat = 0.25;
  //         p = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.890000002.
  // Step 2: p = 0.890000002 * 0.99; m = 0.02, v = 3.1225e-4; mhat = 0.02 / 0.19,
  //         vhat = 3.1225e-4 / 0.001999; p -= 0.1 * mhat / (sqrt(vhat) + 1e-8)
  //         = 0.85446629868...
  const auto optimizer = make_adamw({.lr = 0.1, .eps = 1e-8, .weight_decay = 0.1});
  const auto p = scalar_steps(*optimizer, {0.5f, -0.25f});
  EXPECT_NEAR(p[0], 0.890000002, 1e-6);
  EXPECT_NEAR(p[1], 0.8544662986878463, 1e-6);
}

// The update is elementwise: one 11-element parameter (the CPU kernel's 4-wide vector
// loop plus a tail) and eleven 1-element parameters (the scalar tail only) end
// bit-identical.
TEST(AdamW, VectorAndScalarPathsAgreeBitwise) {
  constexpr int kSize = 11;
  std::vector<float> start;
  for (int k = 0; k < kSize; ++k) start.push_back(uniform01(4, RngStream::Augment, k) - 0.5f);
  std::vector<Parameter> whole{parameter("w", start)};
  std::vector<Parameter> pieces;
  for (int k = 0; k < kSize; ++k) pieces.push_back(parameter("p" + std::to_string(k), {start[k]}));
  const auto a = make_adamw({.lr = 0.05});
  const auto b = make_adamw({.lr = 0.05});
  for (std::uint64_t step = 0; step < 5; ++step) {
    std::vector<float> grads;
    for (int k = 0; k < kSize; ++k) {
      grads.push_back(uniform01(5, RngStream::Augment, step * kSize + k) - 0.5f);
      pieces[k].grad.fill(grads.back());
    }
    test::set_values(whole[0].grad, grads);
    a->step(pointers(whole));
    b->step(pointers(pieces));
  }
  const std::vector<float> result = whole[0].value.to_vector();
  for (int k = 0; k < kSize; ++k) EXPECT_EQ(result[k], pieces[k].value.to_vector()[0]) << k;
}

// A gradient that goes to 0 and stays there (a weight of an always-black pixel)
// makes the moments decay geometrically; they must become zeros, never
// subnormal (ops/clip.cuh, flush_subnormal), on the vector lanes and the scalar
// tail alike (11 elements: two vectors of 4 and a tail of 3).
std::vector<float> subnormals(const std::map<std::string, Tensor>& state) {
  std::vector<float> found;
  for (const auto& [name, tensor] : state)
    for (const float x : tensor.to_vector())
      if (std::fpclassify(x) == FP_SUBNORMAL) found.push_back(x);
  return found;
}

TEST(Optimizer, DecayingStateBecomesZeroNotSubnormal) {
  std::vector<float> start(11, 0.5f), grads;
  for (int k = 0; k < 11; ++k) grads.push_back(k % 2 == 0 ? 1e-3f : -1e-3f);
  for (const bool adamw : {true, false}) {
    std::vector<Parameter> p{parameter("w", start)};
    const auto optimizer =
        adamw ? make_adamw({.lr = 1e-3}) : make_sgd({.lr = 1e-3, .momentum = 0.5});
    test::set_values(p[0].grad, grads);
    optimizer->step(pointers(p));
    p[0].grad.fill(0.0f);
    // AdamW's m decays by 0.9 a step, from 1e-4 to below 1.2e-38 in 780 steps (v,
    // by 0.999, would take 80,000); SGD's buffer by 0.5, from 1e-3 in 117.
    for (int step = 0; step < 1000; ++step) {
      optimizer->step(pointers(p));
      ASSERT_EQ(subnormals(optimizer->state_tensors()), std::vector<float>())
          << (adamw ? "adamw" : "sgd") << " step " << step;
    }
    const Tensor first = optimizer->state_tensors().begin()->second;  // m, or the buffer
    for (const float x : first.to_vector()) EXPECT_EQ(x, 0.0f);
  }
}

TEST(Optimizer, LearningRateCanBeChanged) {
  const auto optimizer = make_sgd({.lr = 0.1});
  EXPECT_EQ(optimizer->lr(), 0.1);
  optimizer->set_lr(0.5);
  EXPECT_EQ(optimizer->lr(), 0.5);
  EXPECT_NEAR(scalar_steps(*optimizer, {1.0f})[0], 0.5, 1e-7);
}

TEST(Optimizer, InvalidOptionsAreConfigErrors) {
  EXPECT_THROW(make_sgd({.lr = -1}), ConfigError);
  EXPECT_THROW(make_sgd({.lr = 0.1, .momentum = -0.5}), ConfigError);
  EXPECT_THROW(make_sgd({.lr = 0.1, .nesterov = true}), ConfigError);
  EXPECT_THROW(make_sgd({.lr = 0.1, .weight_decay = NAN}), ConfigError);
  EXPECT_THROW(make_adamw({.lr = INFINITY}), ConfigError);
  EXPECT_THROW(make_adamw({.beta1 = 1.0}), ConfigError);
  EXPECT_THROW(make_adamw({.beta2 = -0.1}), ConfigError);
  EXPECT_THROW(make_adamw({.eps = -1e-8}), ConfigError);
}

TEST(ClipGradNorm, ScalesByMaxNormOverTheGlobalNorm) {
  // Gradients (3, 4) and (12): global norm sqrt(9 + 16 + 144) = 13.
  std::vector<Parameter> parameters{parameter("a", {0, 0}), parameter("b", {0})};
  test::set_values(parameters[0].grad, {3, 4});
  test::set_values(parameters[1].grad, {12});
  EXPECT_NEAR(grad_norm(pointers(parameters)), 13.0, 1e-6);
  // Below the norm: every gradient times 6.5 / (13 + 1e-6), torch's coefficient.
  EXPECT_NEAR(clip_grad_norm(pointers(parameters), 6.5), 13.0, 1e-6);
  const double coefficient = 6.5 / (13.0 + 1e-6);
  EXPECT_NEAR(parameters[0].grad.to_vector()[0], 3 * coefficient, 1e-6);
  EXPECT_NEAR(parameters[0].grad.to_vector()[1], 4 * coefficient, 1e-6);
  EXPECT_NEAR(parameters[1].grad.to_vector()[0], 12 * coefficient, 1e-6);
  EXPECT_NEAR(grad_norm(pointers(parameters)), 6.5, 1e-5);
  // At or above the norm: untouched (the coefficient would be >= 1).
  const std::vector<float> before = parameters[1].grad.to_vector();
  EXPECT_NEAR(clip_grad_norm(pointers(parameters), 100.0), 6.5, 1e-5);
  EXPECT_EQ(parameters[1].grad.to_vector(), before);
  EXPECT_EQ(grad_norm({}), 0.0);
}

// The same tensors and gradients through torch.optim (float32) in KILN_PYTHON.
struct TorchCase {
  std::string kind;
  nlohmann::json options;
  std::vector<double> lrs;  // learning rate of each step
};

const std::vector<TorchCase>& torch_cases() {
  static const std::vector<TorchCase> cases{
      {"sgd",
       {{"lr", 0.1}, {"momentum", 0.0}, {"nesterov", false}, {"weight_decay", 0.0}},
       {0.1, 0.1, 0.1}},
      {"sgd",
       {{"lr", 0.05}, {"momentum", 0.9}, {"nesterov", false}, {"weight_decay", 0.01}},
       {0.05, 0.05, 0.02, 0.02}},
      {"sgd",
       {{"lr", 0.05}, {"momentum", 0.8}, {"nesterov", true}, {"weight_decay", 0.1}},
       {0.05, 0.05, 0.05}},
      {"adamw",
       {{"lr", 1e-2}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}, {"weight_decay", 0.01}},
       {1e-2, 1e-2, 5e-3, 5e-3, 5e-3}},
      {"adamw",
       {{"lr", 3e-1}, {"beta1", 0.5}, {"beta2", 0.9}, {"eps", 1e-3}, {"weight_decay", 0.5}},
       {0.3, 0.3, 0.3}},
  };
  return cases;
}

std::unique_ptr<Optimizer> make_optimizer(const TorchCase& c) {
  const auto& o = c.options;
  auto number = [&](const char* key) { return o.at(key).get<double>(); };
  if (c.kind == "sgd")
    return make_sgd(
        {number("lr"), number("momentum"), o.at("nesterov").get<bool>(), number("weight_decay")});
  return make_adamw(
      {number("lr"), number("beta1"), number("beta2"), number("eps"), number("weight_decay")});
}

const char* kTorchOptimScript = R"(
import sys, json
try:
    import torch
except ImportError as e:
    print("skipped: torch is not importable:", e); sys.exit(77)
results = []
for case in json.load(open(sys.argv[1])):
    params = [torch.nn.Parameter(torch.tensor(p, dtype=torch.float32)) for p in case["params"]]
    o = case["options"]
    if case["kind"] == "sgd":
        opt = torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"],
                              nesterov=o["nesterov"], weight_decay=o["weight_decay"])
    else:
        opt = torch.optim.AdamW(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]),
                                eps=o["eps"], weight_decay=o["weight_decay"])
    for lr, grads in zip(case["lrs"], case["grads"]):
        opt.param_groups[0]["lr"] = lr
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    results.append([p.detach().tolist() for p in params])
json.dump(results, open(sys.argv[2], "w"))
)";

TEST(Optimizer, MatchesTorchOptim) {
  const std::vector<std::int64_t> sizes{6, 3};
  std::uint64_t draw = 0;
  auto random_values = [&](std::int64_t n) {
    std::vector<float> v;
    for (std::int64_t i = 0; i < n; ++i)
      v.push_back(4 * uniform01(8, RngStream::Augment, draw++) - 2);
    return v;
  };
  nlohmann::json torch_input = nlohmann::json::array();
  std::vector<std::vector<std::vector<float>>> kiln_results;
  for (const TorchCase& c : torch_cases()) {
    std::vector<Parameter> parameters;
    for (std::size_t i = 0; i < sizes.size(); ++i)
      parameters.push_back(parameter("p" + std::to_string(i), random_values(sizes[i])));
    nlohmann::json entry{{"kind", c.kind}, {"options", c.options}, {"lrs", c.lrs}};
    for (const Parameter& p : parameters) entry["params"].push_back(p.value.to_vector());
    auto optimizer = make_optimizer(c);
    for (const double lr : c.lrs) {
      nlohmann::json step_grads = nlohmann::json::array();
      for (Parameter& p : parameters) {
        test::set_values(p.grad, random_values(p.value.numel()));
        step_grads.push_back(p.grad.to_vector());
      }
      entry["grads"].push_back(step_grads);
      optimizer->set_lr(lr);
      optimizer->step(pointers(parameters));
    }
    torch_input.push_back(entry);
    kiln_results.emplace_back();
    for (const Parameter& p : parameters) kiln_results.back().push_back(p.value.to_vector());
  }

  const test::TempDir dir;
  std::ofstream(dir / "cases.json") << torch_input.dump();
  KILN_RUN_PYTHON_CHECK(dir.path(), kTorchOptimScript,
                        {(dir / "cases.json").string(), (dir / "torch.json").string()});
  const auto torch_results = nlohmann::json::parse(std::ifstream(dir / "torch.json"));
  ASSERT_EQ(torch_results.size(), torch_cases().size());
  for (std::size_t c = 0; c < torch_cases().size(); ++c)
    for (std::size_t p = 0; p < sizes.size(); ++p)
      for (std::size_t k = 0; k < kiln_results[c][p].size(); ++k) {
        // Same float32 operations in the same order: agreement to float rounding.
        const double expected = torch_results[c][p][k];
        EXPECT_NEAR(kiln_results[c][p][k], expected, 1e-6 * (1 + std::abs(expected)))
            << torch_cases()[c].kind << " case " << c << " parameter " << p << "[" << k << "]";
      }
}

}  // namespace
}  // namespace kiln::nn
