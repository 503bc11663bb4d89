#include <kiln/error.h>
#include <kiln/sweep/study.h>

#include <cmath>

namespace kiln::sweep {

const char* to_string(TrialState state) noexcept {
  switch (state) {
    case TrialState::Running:
      return "RUNNING";
    case TrialState::Complete:
      return "COMPLETE";
    case TrialState::Pruned:
      return "PRUNED";
    case TrialState::Fail:
      return "FAIL";
    case TrialState::Waiting:
      return "WAITING";
  }
  return "?";
}

const char* to_string(Direction direction) noexcept {
  return direction == Direction::Minimize ? "minimize" : "maximize";
}

double to_internal(const Distribution& distribution, const nlohmann::json& value) {
  if (const auto* categorical = std::get_if<CategoricalDistribution>(&distribution)) {
    for (std::size_t i = 0; i < categorical->choices.size(); ++i) {
      if (categorical->choices[i] == value) return static_cast<double>(i);
    }
    throw InternalError("sweep: " + value.dump() + " is not one of the parameter's choices");
  }
  if (!value.is_number()) throw InternalError("sweep: a numeric parameter holds " + value.dump());
  return value.get<double>();
}

nlohmann::json to_external(const Distribution& distribution, double internal) {
  if (const auto* categorical = std::get_if<CategoricalDistribution>(&distribution)) {
    const double index = std::round(internal);
    if (index < 0 || index >= static_cast<double>(categorical->choices.size())) {
      throw InternalError("sweep: choice index " + std::to_string(internal) + " out of range");
    }
    return categorical->choices[static_cast<std::size_t>(index)];
  }
  if (std::holds_alternative<IntDistribution>(distribution)) {
    return static_cast<std::int64_t>(std::llround(internal));
  }
  return internal;
}

bool better(Direction direction, double a, double b) noexcept {
  return direction == Direction::Maximize ? a > b : a < b;
}

const Trial* Study::best_trial() const {
  const Trial* best = nullptr;
  for (const Trial& trial : trials) {
    if (trial.state != TrialState::Complete || !trial.value) continue;
    if (best == nullptr || better(direction, *trial.value, *best->value)) best = &trial;
  }
  return best;
}

}  // namespace kiln::sweep
