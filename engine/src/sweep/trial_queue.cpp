#include "sweep/trial_queue.h"

#include "sweep/worker_lease.h"

#include <kiln/log.h>

#include <fmt/format.h>

namespace kiln::sweep {

std::vector<std::string> trial_overrides(const SweepPlan& plan, const Trial& trial) {
  std::vector<std::string> overrides = plan.overrides;
  for (const SweepParam& param : plan.spec.params)
    overrides.push_back(
        fmt::format("{}={}", param.path, value_of(param, trial.params.at(param.path)).dump()));
  return overrides;
}

int budget_used(const Study& study) {
  int used = 0;
  for (const Trial& trial : study.trials)
    if (!trial.system_attrs.contains(kRequeuedFromAttr)) ++used;
  return used;
}

void requeue(JournalTransaction& tx, int trial, const std::string& reason) {
  const Trial original = tx.study().trials.at(static_cast<std::size_t>(trial));
  tx.set_system_attr(trial, kFailReasonAttr, reason);
  tx.set_state(trial, TrialState::Fail);
  TrialDraft copy{.params = original.params,
                  .distributions = original.distributions,
                  .state = TrialState::Waiting};
  copy.system_attrs[kRequeuedFromAttr] = trial;
  const int number = tx.create_trial(copy);
  log::warn("sweep: trial {} failed ({}); re-queued as trial {}", trial, reason, number);
}

std::vector<int> requeue_stale(JournalTransaction& tx, const SweepPaths& paths,
                               const std::string& reason) {
  std::vector<int> stale;
  for (const Trial& trial : tx.study().trials) {
    if (trial.state != TrialState::Running || !trial.system_attrs.contains(kWorkerAttr)) continue;
    const std::string worker = trial.system_attrs[kWorkerAttr].get<std::string>();
    if (!worker_alive(paths.workers, worker)) stale.push_back(trial.number);
  }
  for (const int number : stale) {
    const std::string worker =
        tx.study().trials.at(static_cast<std::size_t>(number)).system_attrs[kWorkerAttr];
    requeue(tx, number, fmt::format("{}: worker {} ended while it ran", reason, worker));
  }
  return stale;
}

namespace {

// A re-queued copy takes over what its original reported, so that the pruner judges
// it on the same record when it resumes from the original's checkpoint.
void inherit(JournalTransaction& tx, int trial) {
  const Trial& copy = tx.study().trials.at(static_cast<std::size_t>(trial));
  if (!copy.system_attrs.contains(kRequeuedFromAttr)) return;
  const Trial original =
      tx.study().trials.at(copy.system_attrs[kRequeuedFromAttr].get<std::size_t>());
  for (const auto& [step, value] : original.intermediate) tx.set_intermediate(trial, step, value);
  for (const auto& [key, value] : original.system_attrs.items())
    if (key.starts_with("completed_rung_")) tx.set_system_attr(trial, key, value);
}

}  // namespace

std::optional<int> claim_trial(Journal& journal, const SweepPlan& plan, Sampler& sampler,
                               const SweepPaths& paths, const std::string& worker_id, int budget) {
  std::optional<int> claimed;
  journal.with_lock(plan.study, [&](JournalTransaction& tx) {
    requeue_stale(tx, paths, "found by " + worker_id);
    for (const Trial& trial : tx.study().trials) {
      if (trial.state != TrialState::Waiting) continue;
      const int number = trial.number;
      if (!tx.set_state(number, TrialState::Running)) continue;
      tx.set_system_attr(number, kWorkerAttr, worker_id);
      inherit(tx, number);
      claimed = number;
      return;
    }
    const Study& study = tx.study();
    if (budget_used(study) >= budget) return;
    // A grid's draw is its index among sampled trials (a re-queued copy re-runs its
    // original's point); the others draw by trial number, as Optuna's samplers do.
    const int index = plan.spec.sampler.kind == SamplerKind::Grid
                          ? budget_used(study)
                          : static_cast<int>(study.trials.size());
    TrialDraft draft{.params = sampler.sample(study, index), .state = TrialState::Running};
    for (const SweepParam& param : plan.spec.params)
      draft.distributions[param.path] = param.distribution;
    draft.system_attrs[kWorkerAttr] = worker_id;
    claimed = tx.create_trial(draft);
  });
  return claimed;
}

}  // namespace kiln::sweep
