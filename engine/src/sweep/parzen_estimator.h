// Private to the sweep area: TPE's Parzen estimator, a mixture of product kernels
// over the sweep's parameters, after Optuna's _ParzenEstimator
// (optuna/samplers/_tpe/parzen_estimator.py, Optuna 5 defaults: prior weight 1,
// magic clip on, endpoints off). One kernel per observed trial plus the prior;
// with one parameter it is the univariate estimator, with all of them the
// multivariate one (Optuna 5 uses the same bandwidths for both).
#pragma once

#include "sweep/trial_rng.h"

#include <kiln/sweep/study.h>

#include <variant>
#include <vector>

namespace kiln::sweep {

// Truncated normal kernels of a numeric parameter in its transformed space: the
// internal value, its log for a log range, and a range widened by half a step on
// each side when the values are discrete (ints and stepped floats).
struct NumericKernels {
  std::vector<double> mus;     // the observations, then the prior's centre
  std::vector<double> sigmas;  // their bandwidths, then the prior's (high - low)
  double low = 0;              // transformed, widened bounds
  double high = 0;
  double value_low = 0;  // the distribution's own bounds, untransformed
  double value_high = 0;
  double step = 0;  // 0: continuous
  bool log = false;
};

// A categorical parameter: per kernel, smoothed probabilities of each choice.
struct CategoricalKernels {
  std::vector<std::vector<double>> probabilities;  // [kernel][choice]
};

using ParzenKernels = std::variant<NumericKernels, CategoricalKernels>;

// The kernels of one parameter from its observed internal values.
ParzenKernels parzen_kernels(const Distribution& distribution,
                             const std::vector<double>& observations);

class ParzenEstimator {
 public:
  // observations[p][i]: parameter p's internal value in observed trial i (oldest
  // trial first: the weights ramp up with recency).
  ParzenEstimator(const std::vector<Distribution>& space,
                  const std::vector<std::vector<double>>& observations);

  // `count` points drawn from the mixture; point[p] is parameter p's internal value.
  std::vector<std::vector<double>> sample(TrialRng& rng, int count) const;
  double log_pdf(const std::vector<double>& point) const;

  const std::vector<double>& weights() const { return weights_; }  // normalized, prior last
  const std::vector<ParzenKernels>& kernels() const { return kernels_; }

 private:
  std::vector<double> weights_;
  std::vector<ParzenKernels> kernels_;
};

// Optuna's default_weights: 1 for each of the newest 25 observations, and a
// linear ramp from 1/n up to 1 (exclusive of the flat part) for older ones.
std::vector<double> tpe_weights(int n);

}  // namespace kiln::sweep
