// Samplers propose a trial's parameters from the study so far: `grid` (every
// combination once, in a fixed order), `random` and `tpe` (the Tree-structured
// Parzen Estimator as Optuna implements it). Each draw is a pure function of
// (seed, trial number, the history), so a resumed sweep proposes what an
// uninterrupted one would have. docs/sweeps.md states each rule.
#pragma once

#include <kiln/sweep/spec.h>
#include <kiln/sweep/study.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace kiln::sweep {

class Sampler {
 public:
  virtual ~Sampler();
  // The internal value (study.h: the number, or a choice's index) of every
  // parameter of the spec, keyed by its path ("train.with.lr"). `study` holds the
  // trials so far; a trial numbered `trial_number` in it, if any, is ignored.
  virtual std::map<std::string, double> sample(const Study& study, int trial_number) = 0;
};

std::unique_ptr<Sampler> make_sampler(const SweepSpec& spec);

// The number of grid combinations (the product of each parameter's number of
// values), saturating at INT64_MAX; nullopt when a parameter is a continuous range.
std::optional<std::int64_t> grid_size(const SweepSpec& spec);

}  // namespace kiln::sweep
