// The order in which a sweep's workers take trials, decided under the journal's lock
// so that two workers never take the same one: a re-queued trial first, else a new
// draw from the sampler while the budget lasts. Trials whose worker died are failed
// and re-queued with the same parameters, so that none is lost and none runs twice.
#pragma once

#include <kiln/sweep/journal.h>
#include <kiln/sweep/sampler.h>
#include <kiln/sweep/sweep.h>

#include <optional>
#include <string>

namespace kiln::sweep {

// System attributes kiln keeps on a trial (Optuna shows them as they are).
inline constexpr const char* kWorkerAttr = "kiln:worker";               // who runs or ran it
inline constexpr const char* kRequeuedFromAttr = "kiln:requeued_from";  // the failed original
inline constexpr const char* kRunIdAttr = "kiln:run_id";                // its MLflow child run
inline constexpr const char* kFailReasonAttr = "kiln:fail_reason";
inline constexpr const char* kWallAttr = "kiln:wall_s";    // the trial's wall time
inline constexpr const char* kTrainAttr = "kiln:train_s";  // of which its stages ran

// The trial's parameters as overrides, after the command line's.
std::vector<std::string> trial_overrides(const SweepPlan& plan, const Trial& trial);

// Trials that count against the budget: every sampled one, a re-queued copy not
// counted again.
int budget_used(const Study& study);

// Fails every RUNNING trial whose worker is gone (tx's study), re-queuing a WAITING
// copy with the same parameters; returns the numbers of the trials failed. The
// copy's trial resumes from the original's checkpoint: same parameters, same step
// cache key.
std::vector<int> requeue_stale(JournalTransaction& tx, const SweepPaths& paths,
                               const std::string& reason);
// Fails `trial` and re-queues a copy, whatever its worker: a worker interrupted by a
// signal gives its trial back this way.
void requeue(JournalTransaction& tx, int trial, const std::string& reason);

// The next trial for `worker_id`, marked RUNNING under its name, or nullopt when the
// budget is spent.
std::optional<int> claim_trial(Journal& journal, const SweepPlan& plan, Sampler& sampler,
                               const SweepPaths& paths, const std::string& worker_id, int budget);

}  // namespace kiln::sweep
