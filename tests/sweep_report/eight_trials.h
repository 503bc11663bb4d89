// A hand-made sweep for the sweep report tests: eight trials in every state but
// waiting, a log float, an int and a categorical whose choices are JSON text (one
// of them full of characters HTML must escape).
#pragma once

#include <kiln/report/sweep_report.h>

#include <map>
#include <optional>
#include <string>

namespace kiln::test {

inline const std::string kSmall = R"([{"type":"dense","units":64}])";
inline const std::string kDeep = R"([{"type":"dense","units":128},{"type":"dropout","p":0.5}])";
inline const std::string kOdd = R"({"note":"a<b & 'c'"})";

inline sweep::Trial make_trial(int number, sweep::TrialState state, double lr, std::int64_t hidden,
                               int layers, std::optional<double> value,
                               std::map<std::int64_t, double> intermediate) {
  sweep::Trial trial;
  trial.number = number;
  trial.state = state;
  trial.distributions = {
      {"train.with.lr", sweep::FloatDistribution{1e-4, 1e-1, true, std::nullopt}},
      {"train.with.hidden", sweep::IntDistribution{32, 256, false, 1}},
      {"train.with.layers", sweep::CategoricalDistribution{{kSmall, kDeep, kOdd}}}};
  trial.params = {{"train.with.lr", lr},
                  {"train.with.hidden", static_cast<double>(hidden)},
                  {"train.with.layers", static_cast<double>(layers)}};
  trial.value = value;
  trial.intermediate = std::move(intermediate);
  return trial;
}

inline report::SweepReportInput eight_trials() {
  report::SweepReportInput input;
  input.sweep_name = "fashion-lr";
  input.objective = "eval/accuracy";
  input.study.name = "kiln-fashion-lr";
  input.study.direction = sweep::Direction::Maximize;
  const auto C = sweep::TrialState::Complete, P = sweep::TrialState::Pruned;
  input.study.trials = {
      make_trial(0, C, 1e-3, 64, 0, 0.81, {{1, 0.70}, {2, 0.78}, {3, 0.81}}),
      make_trial(1, C, 3e-4, 128, 1, 0.86, {{1, 0.75}, {2, 0.83}, {3, 0.86}}),
      make_trial(2, P, 5e-2, 32, 2, std::nullopt, {{1, 0.50}, {2, 0.55}}),
      make_trial(3, C, 1e-2, 256, 2, 0.91, {{1, 0.80}, {2, 0.88}, {3, 0.91}}),
      make_trial(4, sweep::TrialState::Fail, 1e-1, 64, 0, std::nullopt, {}),
      make_trial(5, P, 2e-4, 48, 1, std::nullopt, {{1, 0.60}}),
      make_trial(6, C, 2e-3, 200, 1, 0.88, {{1, 0.79}, {2, 0.85}, {3, 0.88}}),
      make_trial(7, sweep::TrialState::Running, 4e-3, 100, 0, std::nullopt, {{1, 0.72}})};
  input.display_names = {{"train.with.lr", "learning rate"}, {"train.with.hidden", "hidden units"}};
  input.facts[3] = {65.0, 3, "5f2b0c9e8d7a4b3c2d1e0f9a8b7c6d5e"};
  input.facts[4] = {2.5, 0, ""};
  return input;
}

}  // namespace kiln::test
