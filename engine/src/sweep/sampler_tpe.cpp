// The Tree-structured Parzen Estimator (Bergstra et al., NeurIPS 2011) with the
// rules and defaults of Optuna 5's TPESampler (optuna/samplers/_tpe/sampler.py):
// 10 random startup trials, gamma(n) = min(ceil(0.1 n), 25) trials "below",
// pruned trials ranked by how far they got, running trials counted "above"
// (constant_liar, on by default in Optuna 5, so parallel workers spread out), and
// of 24 candidates drawn from the below estimator l(x), the one with the largest
// log l(x) - log g(x).
#include "sweep/parzen_estimator.h"
#include "sweep/samplers.h"

#include <kiln/error.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace kiln::sweep {
namespace {

// Optuna's _get_pruned_trial_score: a pruned trial that reached a later step ranks
// first, then the better value there; NaN ranks last at its step; a trial that
// reported nothing ranks after all that did. Smaller is better.
std::pair<double, double> pruned_score(const Trial& trial, Direction direction) {
  if (trial.intermediate.empty()) return {1.0, 0.0};
  const auto& [step, value] = *trial.intermediate.rbegin();
  const double rank_step = -static_cast<double>(step);
  if (std::isnan(value)) return {rank_step, std::numeric_limits<double>::infinity()};
  return {rank_step, direction == Direction::Minimize ? value : -value};
}

bool by_number(const Trial* a, const Trial* b) { return a->number < b->number; }

// Whether the trial observed `param` under the distribution sampled now: a trial
// from an earlier version of the space (another range, fewer choices) would
// mislead the kernels, or index past the choices.
bool observed(const Trial& trial, const SweepParam& param) {
  const auto value = trial.params.find(param.path);
  if (value == trial.params.end() || std::isnan(value->second)) return false;
  const auto distribution = trial.distributions.find(param.path);
  if (distribution != trial.distributions.end()) return distribution->second == param.distribution;
  const double x = value->second;
  if (const auto* categorical = std::get_if<CategoricalDistribution>(&param.distribution))
    return x >= 0 && x < static_cast<double>(categorical->choices.size());
  if (const auto* range = std::get_if<IntDistribution>(&param.distribution))
    return x >= static_cast<double>(range->low) && x <= static_cast<double>(range->high);
  const auto& range = std::get<FloatDistribution>(param.distribution);
  return x >= range.low && x <= range.high;
}

bool single(const Distribution& distribution) {
  const auto* categorical = std::get_if<CategoricalDistribution>(&distribution);
  return categorical != nullptr && categorical->choices.size() == 1;
}

class TpeSampler final : public Sampler {
 public:
  explicit TpeSampler(const SweepSpec& spec) : spec_(spec) {}

  std::map<std::string, double> sample(const Study& study, int trial_number) override {
    std::vector<const Trial*> trials;
    int finished = 0;
    for (const Trial& trial : study.trials) {
      if (trial.number == trial_number) continue;
      const bool complete = trial.state == TrialState::Complete && trial.value.has_value();
      if (complete || trial.state == TrialState::Pruned) ++finished;
      if (complete || trial.state == TrialState::Pruned || trial.state == TrialState::Running)
        trials.push_back(&trial);
    }
    if (finished < kTpeStartupTrials) return sample_randomly(spec_, trial_number);
    const TpeSplit split = split_trials(trials, tpe_gamma(finished), study.direction);

    std::map<std::string, double> params;
    std::vector<std::size_t> group;  // the parameters sampled together
    for (std::size_t i = 0; i < spec_.params.size(); ++i) {
      if (single(spec_.params[i].distribution)) {
        params[spec_.params[i].path] = 0;  // Optuna does not sample a single choice either
        continue;
      }
      group.push_back(i);
      if (spec_.sampler.multivariate) continue;
      sample_group(split, group, TrialRng(spec_.sampler.seed, trial_number, i), params);
      group.clear();
    }
    if (!group.empty())
      sample_group(split, group, TrialRng(spec_.sampler.seed, trial_number, 0), params);
    return params;
  }

 private:
  // One estimator over the parameters in `group`, from the trials that observed
  // all of them (Optuna's IntersectionSearchSpace, with pruned trials).
  ParzenEstimator estimator(const std::vector<const Trial*>& trials,
                            const std::vector<std::size_t>& group) const {
    std::vector<Distribution> space;
    std::vector<std::vector<double>> observations(group.size());
    for (std::size_t index : group) space.push_back(spec_.params[index].distribution);
    for (const Trial* trial : trials) {
      if (!std::all_of(group.begin(), group.end(),
                       [&](std::size_t index) { return observed(*trial, spec_.params[index]); }))
        continue;
      for (std::size_t g = 0; g < group.size(); ++g)
        observations[g].push_back(trial->params.at(spec_.params[group[g]].path));
    }
    return ParzenEstimator(space, observations);
  }

  void sample_group(const TpeSplit& split, const std::vector<std::size_t>& group, TrialRng rng,
                    std::map<std::string, double>& params) const {
    const ParzenEstimator below = estimator(split.below, group);
    const ParzenEstimator above = estimator(split.above, group);
    const auto candidates = below.sample(rng, kTpeCandidates);
    std::size_t best = 0;
    double best_score = -std::numeric_limits<double>::infinity();
    for (std::size_t c = 0; c < candidates.size(); ++c) {
      const double score = below.log_pdf(candidates[c]) - above.log_pdf(candidates[c]);
      if (score > best_score) {  // the first of equals, as numpy's argmax
        best = c;
        best_score = score;
      }
    }
    for (std::size_t g = 0; g < group.size(); ++g)
      params[spec_.params[group[g]].path] = candidates[best][g];
  }

  SweepSpec spec_;
};

}  // namespace

// Optuna's default_gamma, in the same floating point (for n < 10^5 it equals the
// integer ceil((n + 9) / 10); checked).
int tpe_gamma(int n) { return std::min(static_cast<int>(std::ceil(0.1 * n)), 25); }

// Optuna's _split_trials for one objective: the best complete trials go below,
// up to n_below; the places left go to the best pruned trials; running trials and
// the rest go above.
TpeSplit split_trials(const std::vector<const Trial*>& trials, int n_below, Direction direction) {
  std::vector<const Trial*> complete;
  std::vector<const Trial*> pruned;
  TpeSplit split;
  for (const Trial* trial : trials) {
    if (trial->state == TrialState::Complete && trial->value)
      complete.push_back(trial);
    else if (trial->state == TrialState::Pruned)
      pruned.push_back(trial);
    else if (trial->state == TrialState::Running)
      split.above.push_back(trial);
  }
  // Stable sorts: equal values keep their trial order, as Python's sorted does.
  std::stable_sort(complete.begin(), complete.end(), [&](const Trial* a, const Trial* b) {
    return better(direction, *a->value, *b->value);
  });
  std::stable_sort(pruned.begin(), pruned.end(), [&](const Trial* a, const Trial* b) {
    return pruned_score(*a, direction) < pruned_score(*b, direction);
  });
  std::size_t left = static_cast<std::size_t>(std::max(n_below, 0));
  for (auto* group : {&complete, &pruned}) {
    const std::size_t taken = std::min(left, group->size());
    split.below.insert(split.below.end(), group->begin(), group->begin() + taken);
    split.above.insert(split.above.end(), group->begin() + taken, group->end());
    left -= taken;
  }
  std::sort(split.below.begin(), split.below.end(), by_number);
  std::sort(split.above.begin(), split.above.end(), by_number);
  return split;
}

std::unique_ptr<Sampler> make_tpe_sampler(const SweepSpec& spec) {
  return std::make_unique<TpeSampler>(spec);
}

}  // namespace kiln::sweep
