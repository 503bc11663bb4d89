// The TPE sampler: its split of a hand-made history, gamma, reproducibility, and
// that it beats random search on simple objectives.
#include <kiln/sweep/sampler.h>

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "sweep/samplers.h"
#include "sweep_test_util.h"

namespace kiln::sweep {
namespace {

std::vector<int> numbers(const std::vector<const Trial*>& trials) {
  std::vector<int> out;
  for (const Trial* trial : trials) out.push_back(trial->number);
  return out;
}

TEST(TpeRulesTest, GammaIsATenthRoundedUpAtMost25) {
  EXPECT_EQ(tpe_gamma(0), 0);
  EXPECT_EQ(tpe_gamma(1), 1);
  EXPECT_EQ(tpe_gamma(10), 1);
  EXPECT_EQ(tpe_gamma(11), 2);
  EXPECT_EQ(tpe_gamma(240), 24);
  EXPECT_EQ(tpe_gamma(241), 25);
  EXPECT_EQ(tpe_gamma(1000), 25);
}

// 0 C 0.5 | 1 C 0.9 | 2 P {1: 0.95} | 3 C 0.7 | 4 P {1: 0.4, 3: 0.6} | 5 R | 6 C 0.9
// 7 P {} | 8 F | 9 P {3: 0.2}
Study split_history(Direction direction) {
  Study study;
  study.direction = direction;
  add_trial(study, TrialState::Complete, {}, 0.5);
  add_trial(study, TrialState::Complete, {}, 0.9);
  add_trial(study, TrialState::Pruned, {}, std::nullopt, {{1, 0.95}});
  add_trial(study, TrialState::Complete, {}, 0.7);
  add_trial(study, TrialState::Pruned, {}, std::nullopt, {{1, 0.4}, {3, 0.6}});
  add_trial(study, TrialState::Running);
  add_trial(study, TrialState::Complete, {}, 0.9);
  add_trial(study, TrialState::Pruned);
  add_trial(study, TrialState::Fail);
  add_trial(study, TrialState::Pruned, {}, std::nullopt, {{3, 0.2}});
  return study;
}

std::vector<const Trial*> all(const Study& study) {
  std::vector<const Trial*> trials;
  for (const Trial& trial : study.trials) trials.push_back(&trial);
  return trials;
}

TEST(TpeRulesTest, SplitRanksCompleteThenPrunedByStepThenValue) {
  const Study max = split_history(Direction::Maximize);
  // Ties keep trial order: of the two 0.9s, trial 1 comes first.
  EXPECT_EQ(numbers(split_trials(all(max), 1, Direction::Maximize).below), (std::vector<int>{1}));
  TpeSplit split = split_trials(all(max), 3, Direction::Maximize);
  EXPECT_EQ(numbers(split.below), (std::vector<int>{1, 3, 6}));
  EXPECT_EQ(numbers(split.above), (std::vector<int>{0, 2, 4, 5, 7, 9}));  // not the failed 8
  // One place left for a pruned trial: the furthest (epoch 3: trials 4 and 9), then
  // the better value there (0.6 of trial 4 when maximizing).
  split = split_trials(all(max), 5, Direction::Maximize);
  EXPECT_EQ(numbers(split.below), (std::vector<int>{0, 1, 3, 4, 6}));
  EXPECT_EQ(numbers(split.above), (std::vector<int>{2, 5, 7, 9}));

  const Study min = split_history(Direction::Minimize);
  split = split_trials(all(min), 5, Direction::Minimize);
  EXPECT_EQ(numbers(split.below), (std::vector<int>{0, 1, 3, 6, 9}));  // 0.2 of trial 9
  split = split_trials(all(min), 2, Direction::Minimize);
  EXPECT_EQ(numbers(split.below), (std::vector<int>{0, 3}));
  // A trial with no report ranks after every pruned trial that reported.
  split = split_trials(all(min), 8, Direction::Minimize);
  EXPECT_EQ(numbers(split.below), (std::vector<int>{0, 1, 2, 3, 4, 6, 7, 9}));
  EXPECT_EQ(numbers(split.above), (std::vector<int>{5}));
}

// Runs `trials` sequential trials of `objective` (maximized); the best value.
double run_sweep(const SweepSpec& spec, int trials,
                 const std::function<double(const std::map<std::string, double>&)>& objective,
                 Study* out = nullptr) {
  Study study;
  study.direction = spec.objective.direction;
  auto sampler = make_sampler(spec);
  for (int n = 0; n < trials; ++n) {
    auto params = sampler->sample(study, n);
    add_trial(study, TrialState::Complete, params, objective(params));
  }
  if (out != nullptr) *out = study;
  return *study.best_trial()->value;
}

SweepSpec lr_space(SamplerKind kind, std::uint64_t seed) {
  SweepSpec spec = test_spec(kind, {param("t.with.lr", FloatDistribution{1e-5, 1, true})});
  spec.sampler.seed = seed;
  return spec;
}

double lr_objective(const std::map<std::string, double>& p) {
  const double d = std::log10(p.at("t.with.lr")) + 2.5;
  return -d * d;
}

TEST(TpeSamplerTest, StartsWithTheRandomSamplersTrials) {
  Study study;
  auto tpe = make_sampler(lr_space(SamplerKind::Tpe, 3));
  auto random = make_sampler(lr_space(SamplerKind::Random, 3));
  for (int n = 0; n < 10; ++n) {
    const auto params = tpe->sample(study, n);
    EXPECT_EQ(params, random->sample(study, n));
    add_trial(study, TrialState::Complete, params, lr_objective(params));
  }
  EXPECT_NE(tpe->sample(study, 10), random->sample(study, 10));  // the model from trial 10 on
}

TEST(TpeSamplerTest, SameSeedAndHistorySameTrialsOtherSeedOthers) {
  Study first;
  Study second;
  Study other;
  run_sweep(lr_space(SamplerKind::Tpe, 5), 30, lr_objective, &first);
  run_sweep(lr_space(SamplerKind::Tpe, 5), 30, lr_objective, &second);
  run_sweep(lr_space(SamplerKind::Tpe, 6), 30, lr_objective, &other);
  int differs = 0;
  for (int n = 0; n < 30; ++n) {
    const auto& trial = first.trials[static_cast<std::size_t>(n)];
    EXPECT_EQ(trial.params, second.trials[static_cast<std::size_t>(n)].params) << n;
    differs += trial.params != other.trials[static_cast<std::size_t>(n)].params;
  }
  EXPECT_EQ(differs, 30);
  // Given one history, the proposal for the next trial depends on the seed alone.
  auto sampler = make_sampler(lr_space(SamplerKind::Tpe, 5));
  EXPECT_EQ(sampler->sample(first, 30),
            make_sampler(lr_space(SamplerKind::Tpe, 5))->sample(first, 30));
}

SweepSpec two_d_space(SamplerKind kind, std::uint64_t seed, bool multivariate = false) {
  SweepSpec spec = test_spec(kind, {param("t.with.lr", FloatDistribution{1e-5, 1, true}),
                                    param("t.with.epochs", IntDistribution{1, 20})});
  spec.sampler.seed = seed;
  spec.sampler.multivariate = multivariate;
  return spec;
}

double two_d_objective(const std::map<std::string, double>& p) {
  const double e = (p.at("t.with.epochs") - 12) / 4;
  return lr_objective(p) - e * e;
}

// Mean regret (distance of the best value from the optimum 0) over seeds 0..9.
double mean_regret(const std::function<SweepSpec(std::uint64_t)>& space,
                   const std::function<double(const std::map<std::string, double>&)>& objective) {
  double total = 0;
  for (std::uint64_t seed = 0; seed < 10; ++seed) total -= run_sweep(space(seed), 40, objective);
  return total / 10;
}

// 40 trials, mean regret over seeds 0..9. Measured (x86-64, these seeds): 1-D
// random 1.62e-3, TPE 2.12e-4 (7.6x better); 2-D random 0.208, TPE 0.0633 (3.3x),
// multivariate TPE 0.0254 (8.2x). Each bound asks for half the measured advantage
// or less, so a TPE that models nothing (at best random's regret) fails, and
// harmless numeric drift passes. Random's 1-D regret also agrees with theory:
// log10(lr) is uniform on [-5, 0], so d = |log10(lr) + 2.5| is uniform on [0, 2.5]
// and E[min over 40 of d^2] = 6.25 * 2 * B(2, 41) = 7.26e-3, sd 0.0153 per seed
// (0.0048 for a mean of 10); TPE must be 10x below that expectation.
TEST(TpeSamplerTest, BeatsRandomOnSmoothObjectives) {
  const double random_1d =
      mean_regret([](auto s) { return lr_space(SamplerKind::Random, s); }, lr_objective);
  const double tpe_1d =
      mean_regret([](auto s) { return lr_space(SamplerKind::Tpe, s); }, lr_objective);
  EXPECT_NEAR(random_1d, 7.26e-3, 3 * 0.0048);
  EXPECT_LT(tpe_1d, random_1d / 3);
  EXPECT_LT(tpe_1d, 7.26e-3 / 10);

  const double random_2d =
      mean_regret([](auto s) { return two_d_space(SamplerKind::Random, s); }, two_d_objective);
  const double tpe_2d =
      mean_regret([](auto s) { return two_d_space(SamplerKind::Tpe, s); }, two_d_objective);
  const double joint_2d =
      mean_regret([](auto s) { return two_d_space(SamplerKind::Tpe, s, true); }, two_d_objective);
  EXPECT_LT(tpe_2d, random_2d / 1.5);
  EXPECT_LT(joint_2d, random_2d / 3);
}

SweepSpec mixed_space(SamplerKind kind, std::uint64_t seed, bool multivariate) {
  SweepSpec spec =
      test_spec(kind, {param("t.with.lr", FloatDistribution{1e-5, 1, true}),
                       categorical("t.with.optimizer", {"sgd", "adam", "rmsprop", "adagrad"}),
                       categorical("t.with.fixed", {7})});
  spec.sampler.seed = seed;
  spec.sampler.multivariate = multivariate;
  return spec;
}

// Choosing the right one of 4 choices is worth more than any lr; after the 10
// random startup trials, random search picks it in 1/4 of trials (37.5 of the
// 150 trials 10..39 of seeds 0..4, sd 5.3), TPE should exploit it. Measured
// (x86-64): univariate TPE picks it 105 times, multivariate 87; the bound, 60, asks
// for under half of the smaller advantage and lies 4.2 sd above random's mean.
TEST(TpeSamplerTest, FindsTheBestChoice) {
  const auto objective = [](const std::map<std::string, double>& p) {
    return lr_objective(p) - (p.at("t.with.optimizer") == 2 ? 0.0 : 1.0);
  };
  for (const bool multivariate : {false, true}) {
    int picked = 0;
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
      Study study;
      run_sweep(mixed_space(SamplerKind::Tpe, seed, multivariate), 40, objective, &study);
      for (std::size_t n = 10; n < 40; ++n) {
        picked += study.trials[n].params.at("t.with.optimizer") == 2;
        EXPECT_EQ(study.trials[n].params.at("t.with.fixed"), 0);  // the single choice
      }
    }
    EXPECT_GT(picked, 60) << (multivariate ? "multivariate" : "univariate");
  }
}

}  // namespace
}  // namespace kiln::sweep
