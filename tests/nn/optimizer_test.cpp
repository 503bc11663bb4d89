#include <kiln/error.h>
#include <kiln/nn/optimizer.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <vector>

#include "formats/python_check.h"

namespace kiln::nn {
namespace {

// One scalar parameter p = 1 stepped with the given gradients; returns p after each step.
std::vector<float> scalar_steps(Optimizer& optimizer, const std::vector<float>& grads) {
  std::vector<Parameter> parameters{{"p", {1}, {1.0f}, {0.0f}}};
  std::vector<float> values;
  for (const float g : grads) {
    parameters[0].grad[0] = g;
    optimizer.step(parameters);
    values.push_back(parameters[0].value[0]);
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

// The update is elementwise: one 11-element parameter (vector loop plus tail) and
// eleven 1-element parameters (tail only) end bit-identical.
TEST(AdamW, VectorAndScalarPathsAgreeBitwise) {
  constexpr int kSize = 11;
  std::vector<Parameter> whole{
      {"w", {kSize}, std::vector<float>(kSize), std::vector<float>(kSize)}};
  std::vector<Parameter> pieces;
  for (int k = 0; k < kSize; ++k) {
    whole[0].value[k] = uniform01(4, RngStream::Augment, k) - 0.5f;
    pieces.push_back({"p", {1}, {whole[0].value[k]}, {0.0f}});
  }
  const auto a = make_adamw({.lr = 0.05});
  const auto b = make_adamw({.lr = 0.05});
  for (std::uint64_t step = 0; step < 5; ++step) {
    for (int k = 0; k < kSize; ++k) {
      whole[0].grad[k] = uniform01(5, RngStream::Augment, step * kSize + k) - 0.5f;
      pieces[k].grad[0] = whole[0].grad[k];
    }
    a->step(whole);
    b->step(pieces);
  }
  for (int k = 0; k < kSize; ++k) EXPECT_EQ(whole[0].value[k], pieces[k].value[0]) << k;
}

TEST(Optimizer, LearningRateCanBeChanged) {
  const auto optimizer = make_sgd({.lr = 0.1});
  EXPECT_EQ(optimizer->lr(), 0.1);
  optimizer->set_lr(0.5);
  EXPECT_EQ(optimizer->lr(), 0.5);
  EXPECT_NEAR(scalar_steps(*optimizer, {1.0f})[0], 0.5, 1e-7);
}

TEST(Optimizer, ChangedParameterListIsAnInternalError) {
  std::vector<std::unique_ptr<Optimizer>> optimizers;
  optimizers.push_back(make_sgd({.lr = 0.1, .momentum = 0.9}));
  optimizers.push_back(make_adamw({}));
  for (const auto& optimizer : optimizers) {
    std::vector<Parameter> parameters{{"a", {2}, {1, 2}, {0, 0}}, {"b", {1}, {3}, {0}}};
    optimizer->step(parameters);
    parameters[1].value.push_back(4);
    parameters[1].grad.push_back(0);
    EXPECT_THROW(optimizer->step(parameters), InternalError);
    parameters.pop_back();
    EXPECT_THROW(optimizer->step(parameters), InternalError);
  }
  std::vector<Parameter> mismatched{{"a", {2}, {1, 2}, {0}}};
  EXPECT_THROW(make_sgd({})->step(mismatched), InternalError);
}

TEST(Optimizer, InvalidOptionsAreConfigErrors) {
  EXPECT_THROW(make_sgd({.lr = -1}), ConfigError);
  EXPECT_THROW(make_sgd({.lr = 0.1, .momentum = -0.5}), ConfigError);
  EXPECT_THROW(make_sgd({.lr = 0.1, .nesterov = true}), ConfigError);
  EXPECT_THROW(make_sgd({.lr = 0.1, .weight_decay = NAN}), ConfigError);
  EXPECT_THROW(make_adamw({.beta1 = 1.0}), ConfigError);
  EXPECT_THROW(make_adamw({.beta2 = -0.1}), ConfigError);
  EXPECT_THROW(make_adamw({.eps = -1e-8}), ConfigError);
}

// The same tensors and gradients through torch.optim (float32) in KILN_PYTHON.
struct TorchCase {
  std::string kind;
  nlohmann::json options;
  std::vector<double> lrs;  // learning rate of each step
};

TEST(Optimizer, MatchesTorchOptim) {
  const std::vector<TorchCase> cases{
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
  for (const TorchCase& c : cases) {
    std::vector<Parameter> parameters;
    for (std::size_t i = 0; i < sizes.size(); ++i)
      parameters.push_back({"p" + std::to_string(i), {sizes[i]}, random_values(sizes[i]), {}});
    nlohmann::json entry{{"kind", c.kind}, {"options", c.options}, {"lrs", c.lrs}};
    for (const Parameter& p : parameters) entry["params"].push_back(p.value);
    const auto& o = c.options;
    auto number = [&](const char* key) { return o.at(key).get<double>(); };
    auto optimizer = c.kind == "sgd"
                         ? make_sgd({number("lr"), number("momentum"), o.at("nesterov").get<bool>(),
                                     number("weight_decay")})
                         : make_adamw({number("lr"), number("beta1"), number("beta2"),
                                       number("eps"), number("weight_decay")});
    for (const double lr : c.lrs) {
      nlohmann::json step_grads = nlohmann::json::array();
      for (Parameter& p : parameters) {
        p.grad = random_values(static_cast<std::int64_t>(p.value.size()));
        step_grads.push_back(p.grad);
      }
      entry["grads"].push_back(step_grads);
      optimizer->set_lr(lr);
      optimizer->step(parameters);
    }
    torch_input.push_back(entry);
    kiln_results.emplace_back();
    for (const Parameter& p : parameters) kiln_results.back().push_back(p.value);
  }

  const test::TempDir dir;
  std::ofstream(dir / "cases.json") << torch_input.dump();
  const char* script = R"(
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
  KILN_RUN_PYTHON_CHECK(dir.path(), script,
                        {(dir / "cases.json").string(), (dir / "torch.json").string()});
  const auto torch_results = nlohmann::json::parse(std::ifstream(dir / "torch.json"));
  ASSERT_EQ(torch_results.size(), cases.size());
  for (std::size_t c = 0; c < cases.size(); ++c)
    for (std::size_t p = 0; p < sizes.size(); ++p)
      for (std::size_t k = 0; k < kiln_results[c][p].size(); ++k) {
        // Same float32 operations in the same order: agreement to float rounding.
        const double expected = torch_results[c][p][k];
        EXPECT_NEAR(kiln_results[c][p][k], expected, 1e-6 * (1 + std::abs(expected)))
            << cases[c].kind << " case " << c << " parameter " << p << "[" << k << "]";
      }
}

}  // namespace
}  // namespace kiln::nn
