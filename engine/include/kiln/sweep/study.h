// A sweep's state as kiln holds it in memory: a study with its trials, shaped like
// Optuna's model so that the journal (kiln/sweep/journal.h) maps onto Optuna's
// journal storage one to one, and so that the samplers and the pruner
// (kiln/sweep/sampler.h, kiln/sweep/asha.h) read the same history Optuna's would.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kiln::sweep {

// The numbers are Optuna's (optuna.trial.TrialState), since the journal stores them.
enum class TrialState { Running = 0, Complete = 1, Pruned = 2, Fail = 3, Waiting = 4 };
// The numbers are Optuna's (optuna.study.StudyDirection; NOT_SET = 0 is never used).
enum class Direction { Minimize = 1, Maximize = 2 };

const char* to_string(TrialState state) noexcept;
const char* to_string(Direction direction) noexcept;

// Optuna's FloatDistribution: `uniform`, `loguniform` (log = true), optional step.
struct FloatDistribution {
  double low = 0;
  double high = 0;
  bool log = false;
  std::optional<double> step;
  bool operator==(const FloatDistribution&) const = default;
};

// Optuna's IntDistribution: `int` with inclusive bounds, optionally log.
struct IntDistribution {
  std::int64_t low = 0;
  std::int64_t high = 0;
  bool log = false;
  std::int64_t step = 1;
  bool operator==(const IntDistribution&) const = default;
};

// Optuna's CategoricalDistribution: `choice`. Optuna accepts only None, bool, int,
// float and str as choices, so a choice that is a mapping or a list (a model's
// layers) is held here as its compact JSON text (json::dump()); the sweep space
// keeps the structured value and maps an index to it.
struct CategoricalDistribution {
  std::vector<nlohmann::json> choices;  // scalars only
  bool operator==(const CategoricalDistribution&) const = default;
};

using Distribution = std::variant<FloatDistribution, IntDistribution, CategoricalDistribution>;

// Optuna stores every parameter as a float, its "internal representation": the
// number itself, or the index of a categorical choice.
double to_internal(const Distribution& distribution, const nlohmann::json& value);
nlohmann::json to_external(const Distribution& distribution, double internal);

struct Trial {
  int number = 0;  // 0, 1, 2, ... in order of creation; also Optuna's trial_id here
  TrialState state = TrialState::Running;
  std::map<std::string, double> params;  // parameter name -> internal representation
  std::map<std::string, Distribution> distributions;
  std::optional<double> value;                  // the objective of a complete trial
  std::map<std::int64_t, double> intermediate;  // step (epoch) -> objective there
  nlohmann::json user_attrs = nlohmann::json::object();
  nlohmann::json system_attrs = nlohmann::json::object();
  std::string datetime_start;  // Optuna's text form, "2026-12-05T10:09:55.123456"; empty if unset
  std::string datetime_complete;  // empty while the trial is not finished
};

struct Study {
  std::string name;
  Direction direction = Direction::Maximize;
  std::vector<Trial> trials;  // trials[i].number == i
  nlohmann::json user_attrs = nlohmann::json::object();
  nlohmann::json system_attrs = nlohmann::json::object();

  // The best complete trial, or nullptr when none has completed.
  const Trial* best_trial() const;
};

// True when `a` is a better objective than `b` in `direction`.
bool better(Direction direction, double a, double b) noexcept;

}  // namespace kiln::sweep
