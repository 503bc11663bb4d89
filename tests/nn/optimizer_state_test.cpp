// Optimizer state for checkpoints: what state_tensors/state_scalars give, restored
// into a fresh optimizer by load_state, continues the run bit for bit.
#include <kiln/error.h>
#include <kiln/nn/optimizer.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <vector>

#include "nn/gradient_checker.h"

namespace kiln::nn {
namespace {

using test::random_tensor;

struct OptimizerCase {
  std::string name;
  std::function<std::unique_ptr<Optimizer>()> make;
  std::vector<std::string> prefixes;  // of the state tensors' names
};

std::vector<OptimizerCase> optimizer_cases() {
  return {
      {"sgd_momentum",
       [] { return make_sgd({.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01}); },
       {"sgd.momentum."}},
      {"sgd_nesterov",
       [] { return make_sgd({.lr = 0.1, .momentum = 0.8, .nesterov = true}); },
       {"sgd.momentum."}},
      {"adamw",
       [] { return make_adamw({.lr = 0.05, .weight_decay = 0.1}); },
       {"adamw.m.", "adamw.v."}},
  };
}

class OptimizerState : public ::testing::TestWithParam<OptimizerCase> {};

Model small_model() {
  return test::build_model(
      nlohmann::json::parse(R"([{"linear": {"out": 5}}, "relu", {"linear": {"out": 3}}])"), {4},
      Device::cpu(), 8);
}

void set_random_grads(Model& model, std::uint64_t seed) {
  for (Parameter* p : model.parameters()) p->grad.copy_from(random_tensor(p->grad.shape(), seed++));
}

std::vector<std::vector<float>> values_of(Model& model) {
  std::vector<std::vector<float>> values;
  for (const Parameter* p : model.parameters()) values.push_back(p->value.to_vector());
  return values;
}

// A checkpoint keeps copies, not the optimizer's own tensors.
std::map<std::string, Tensor> copies(const std::map<std::string, Tensor>& tensors) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, tensor] : tensors) out.emplace(name, tensor.clone());
  return out;
}

TEST_P(OptimizerState, RestoredStateContinuesBitIdentically) {
  Model original = small_model(), restored = small_model();
  auto optimizer = GetParam().make();
  for (std::uint64_t step = 0; step < 3; ++step) {
    set_random_grads(original, 10 * step);
    optimizer->step(original.parameters());
  }
  const auto tensors = copies(optimizer->state_tensors());
  const nlohmann::json scalars = optimizer->state_scalars();
  EXPECT_EQ(scalars.at("steps"), 3);
  std::vector<std::string> names;
  for (const auto& prefix : GetParam().prefixes)
    for (const Parameter* p : original.parameters()) names.push_back(prefix + p->name);
  std::sort(names.begin(), names.end());
  std::vector<std::string> saved;
  for (const auto& [name, tensor] : tensors) saved.push_back(name);
  EXPECT_EQ(saved, names);

  // The restored model gets the weights a checkpoint holds, its optimizer the state.
  for (std::size_t i = 0; i < original.parameters().size(); ++i)
    restored.parameters()[i]->value.copy_from(original.parameters()[i]->value);
  auto resumed = GetParam().make();
  resumed->load_state(restored.parameters(), tensors, scalars);
  auto fresh = GetParam().make();  // the same steps without the state
  Model unrestored = small_model();
  for (std::size_t i = 0; i < original.parameters().size(); ++i)
    unrestored.parameters()[i]->value.copy_from(original.parameters()[i]->value);
  for (std::uint64_t step = 3; step < 5; ++step) {
    for (Model* model : {&original, &restored, &unrestored}) set_random_grads(*model, 10 * step);
    optimizer->step(original.parameters());
    resumed->step(restored.parameters());
    fresh->step(unrestored.parameters());
  }
  EXPECT_EQ(values_of(restored), values_of(original));
  EXPECT_NE(values_of(unrestored), values_of(original));
  EXPECT_EQ(resumed->state_scalars().at("steps"), 5);
}

TEST_P(OptimizerState, MissingOrMisshapenStateIsADataError) {
  Model model = small_model();
  auto optimizer = GetParam().make();
  set_random_grads(model, 1);
  optimizer->step(model.parameters());
  const std::string name = GetParam().prefixes[0] + "layers.2.bias";
  auto missing = copies(optimizer->state_tensors());
  ASSERT_EQ(missing.erase(name), 1u);
  try {
    GetParam().make()->load_state(model.parameters(), missing, optimizer->state_scalars());
    ADD_FAILURE() << "loaded without " << name;
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
  auto misshapen = copies(optimizer->state_tensors());
  misshapen[name] = Tensor::zeros({4});
  EXPECT_THROW(
      GetParam().make()->load_state(model.parameters(), misshapen, optimizer->state_scalars()),
      DataError);
}

INSTANTIATE_TEST_SUITE_P(Kinds, OptimizerState, ::testing::ValuesIn(optimizer_cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace kiln::nn
