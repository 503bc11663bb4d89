// Asynchronous successive halving (ASHA, Li et al., MLSys 2020) on epochs, with the
// rule of Optuna's SuccessiveHalvingPruner (optuna/pruners/_successive_halving.py,
// min_early_stopping_rate = 0, bootstrap_count = 0), so a kiln study pruned here
// reads like one Optuna pruned:
//
// - Rungs sit at epochs min_epochs * eta^k, k = 0, 1, ..., below max_epochs (a
//   trial that reaches max_epochs is finished, not judged).
// - A trial is judged at its current rung k (the first whose key
//   `completed_rung_<k>` is not yet in its system_attrs) as soon as it reports an
//   epoch >= that rung's epoch, with the value of that latest report. A NaN value
//   stops it at once and records nothing.
// - Judging records the value as system_attrs["completed_rung_<k>"] (Optuna's key,
//   so the journal shows it to Optuna too), then compares it with every value
//   recorded at rung k by the other trials plus itself: with n values sorted best
//   first, the trial continues when its value is at least as good as the value of
//   rank max(floor(n / eta) - 1, 0) (0 = best). With fewer than eta values only the
//   best so far continues: ASHA would pause the others, Optuna and kiln cannot.
// - A trial that continues is judged at the next rung in the same call when its
//   epoch already reaches that rung too.
#pragma once

#include <kiln/sweep/study.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::sweep {

struct AshaConfig {
  std::int64_t min_epochs = 1;
  std::int64_t max_epochs = 1;
  std::int64_t reduction_factor = 4;  // Optuna's default eta
  bool operator==(const AshaConfig&) const = default;
};

// The rung epochs: min_epochs * eta^k below max_epochs, ascending.
std::vector<std::int64_t> rungs(const AshaConfig& config);

// "completed_rung_<k>": the system_attrs key of a trial's value at rung k.
std::string completed_rung_key(int rung);

// Call after trial `trial_number` reported `epoch` into its `intermediate` map.
// True when the trial should stop (be pruned). Records the rung values it judged in
// the trial's system_attrs, so the study must be the one the journal persists.
bool should_stop(Study& study, const AshaConfig& config, int trial_number, std::int64_t epoch);

}  // namespace kiln::sweep
