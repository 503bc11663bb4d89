#include <kiln/error.h>
#include <kiln/sweep/asha.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace kiln::sweep {
namespace {

// Optuna's _get_current_rung: the first rung without a recorded value.
int current_rung(const Trial& trial) {
  int rung = 0;
  while (trial.system_attrs.contains(completed_rung_key(rung))) ++rung;
  return rung;
}

// Optuna's _is_trial_promotable_to_next_rung: `competing` holds every value at the
// rung, this trial's included.
bool promotable(double value, std::vector<double> competing, std::int64_t eta,
                Direction direction) {
  const std::int64_t count = static_cast<std::int64_t>(competing.size());
  const std::size_t rank = static_cast<std::size_t>(std::max<std::int64_t>(count / eta - 1, 0));
  std::sort(competing.begin(), competing.end());
  if (direction == Direction::Maximize) return value >= competing[competing.size() - 1 - rank];
  return value <= competing[rank];
}

}  // namespace

std::vector<std::int64_t> rungs(const AshaConfig& config) {
  if (config.min_epochs < 1 || config.reduction_factor < 2)
    throw InternalError("asha: min_epochs >= 1 and reduction_factor >= 2 expected");
  std::vector<std::int64_t> epochs;
  for (std::int64_t epoch = config.min_epochs; epoch < config.max_epochs;
       epoch *= config.reduction_factor)
    epochs.push_back(epoch);
  return epochs;
}

std::string completed_rung_key(int rung) { return fmt::format("completed_rung_{}", rung); }

bool should_stop(Study& study, const AshaConfig& config, int trial_number, std::int64_t epoch) {
  if (trial_number < 0 || trial_number >= static_cast<int>(study.trials.size()))
    throw InternalError(fmt::format("asha: no trial {} in the study", trial_number));
  Trial& trial = study.trials[static_cast<std::size_t>(trial_number)];
  const auto reported = trial.intermediate.find(epoch);
  if (reported == trial.intermediate.end())
    throw InternalError(
        fmt::format("asha: trial {} reported nothing at epoch {}", trial_number, epoch));
  const double value = reported->second;
  const std::vector<std::int64_t> rung_epochs = rungs(config);
  for (int rung = current_rung(trial); rung < static_cast<int>(rung_epochs.size()); ++rung) {
    if (epoch < rung_epochs[static_cast<std::size_t>(rung)]) return false;
    if (std::isnan(value)) return true;
    const std::string key = completed_rung_key(rung);
    std::vector<double> competing{value};
    for (const Trial& other : study.trials)
      if (other.number != trial_number && other.system_attrs.contains(key))
        competing.push_back(other.system_attrs[key].get<double>());
    trial.system_attrs[key] = value;
    if (!promotable(value, std::move(competing), config.reduction_factor, study.direction))
      return true;
  }
  return false;
}

}  // namespace kiln::sweep
