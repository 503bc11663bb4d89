// Private to the sweep area: what the samplers share.
#pragma once

#include "sweep/trial_rng.h"

#include <kiln/sweep/sampler.h>

#include <vector>

namespace kiln::sweep {

// One value of `distribution`, uniform in it (log-uniform for a log range), as
// Optuna's RandomSampler draws (optuna/samplers/_random.py): steps and int bounds
// are honoured by drawing on [low - step/2, high + step/2] and rounding.
double sample_uniformly(const Distribution& distribution, TrialRng& rng);

// Every parameter of the spec drawn uniformly: parameter i draws on lane i.
std::map<std::string, double> sample_randomly(const SweepSpec& spec, int trial_number);

std::unique_ptr<Sampler> make_tpe_sampler(const SweepSpec& spec);

// TPE's rules, exposed for the tests (sampler_tpe.cpp says where each is from).
inline constexpr int kTpeStartupTrials = 10;
inline constexpr int kTpeCandidates = 24;
int tpe_gamma(int n);
struct TpeSplit {
  std::vector<const Trial*> below;  // each in trial-number order
  std::vector<const Trial*> above;
};
TpeSplit split_trials(const std::vector<const Trial*>& trials, int n_below, Direction direction);

}  // namespace kiln::sweep
