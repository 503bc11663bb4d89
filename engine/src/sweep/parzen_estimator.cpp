#include "sweep/parzen_estimator.h"

#include "sweep/truncnorm.h"

#include <kiln/error.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace kiln::sweep {
namespace {

constexpr double kPriorWeight = 1.0;  // Optuna's prior_weight

// Bandwidths (Optuna's compute_sigmas): each observation's sigma is the larger gap
// to its sorted neighbours, the range's ends counting as neighbours, except that
// with endpoints off (the default) the smallest and largest observations use their
// inner gap only. The "magic clip" then bounds sigma below by
// (high - low) / min(100, 1 + kernels) so no kernel collapses, and above by the range.
std::vector<double> bandwidths(const std::vector<double>& mus, double low, double high) {
  const std::size_t n = mus.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return mus[a] < mus[b]; });
  std::vector<double> sorted(n + 2);  // with the range's ends
  sorted.front() = low;
  sorted.back() = high;
  for (std::size_t i = 0; i < n; ++i) sorted[i + 1] = mus[order[i]];
  std::vector<double> sorted_sigmas(n);
  for (std::size_t i = 0; i < n; ++i)
    sorted_sigmas[i] = std::max(sorted[i + 1] - sorted[i], sorted[i + 2] - sorted[i + 1]);
  if (n >= 2) {
    sorted_sigmas.front() = sorted[2] - sorted[1];
    sorted_sigmas.back() = sorted[n] - sorted[n - 1];
  }
  const double kernels = static_cast<double>(n + 1);  // with the prior
  const double min_sigma = (high - low) / std::min(100.0, 1.0 + kernels);
  std::vector<double> sigmas(n);
  for (std::size_t i = 0; i < n; ++i)
    sigmas[order[i]] = std::clamp(sorted_sigmas[i], min_sigma, high - low);
  return sigmas;
}

NumericKernels numeric_kernels(double low, double high, double step, bool log,
                               const std::vector<double>& observations) {
  NumericKernels kernels;
  kernels.value_low = low;
  kernels.value_high = high;
  kernels.step = step;
  kernels.log = log;
  kernels.low = log ? std::log(low - step / 2) : low - step / 2;
  kernels.high = log ? std::log(high + step / 2) : high + step / 2;
  kernels.mus = observations;
  if (log)
    for (double& mu : kernels.mus) mu = std::log(mu);
  kernels.sigmas = bandwidths(kernels.mus, kernels.low, kernels.high);
  kernels.mus.push_back(0.5 * (kernels.low + kernels.high));
  kernels.sigmas.push_back(kernels.high - kernels.low);
  return kernels;
}

// Optuna's categorical kernels: every kernel (the prior included) spreads
// prior_weight / kernels over all choices, an observation adds 1 to its own
// choice, and each row is normalized. Without observations, one uniform row.
CategoricalKernels categorical_kernels(std::size_t choices,
                                       const std::vector<double>& observations) {
  CategoricalKernels kernels;
  const std::size_t count = observations.size() + 1;
  const double floor = observations.empty() ? 1.0 : kPriorWeight / static_cast<double>(count);
  kernels.probabilities.assign(count, std::vector<double>(choices, floor));
  for (std::size_t i = 0; i < observations.size(); ++i)
    kernels.probabilities[i][static_cast<std::size_t>(std::llround(observations[i]))] += 1;
  for (auto& row : kernels.probabilities) {
    const double sum = std::accumulate(row.begin(), row.end(), 0.0);
    for (double& p : row) p /= sum;
  }
  return kernels;
}

// The index i with cumulative[i - 1] < u <= cumulative[i] of unnormalized `weights`.
std::size_t pick(const std::vector<double>& weights, double u) {
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  double cumulative = 0;
  for (std::size_t i = 0; i + 1 < weights.size(); ++i) {
    cumulative += weights[i] / total;
    if (u < cumulative) return i;
  }
  return weights.size() - 1;
}

double sample_numeric(const NumericKernels& k, std::size_t kernel, TrialRng& rng) {
  const double mu = k.mus[kernel];
  const double sigma = k.sigmas[kernel];
  double x =
      mu + sigma * truncnorm::ppf(rng.uniform(), (k.low - mu) / sigma, (k.high - mu) / sigma);
  if (k.log) x = std::exp(x);
  // Discrete values round to the nearest step (half to even, as numpy's round).
  if (k.step > 0) x = k.value_low + std::nearbyint((x - k.value_low) / k.step) * k.step;
  return std::clamp(x, k.value_low, k.value_high);
}

// A discrete value's log probability is the kernel's mass over [x - step/2,
// x + step/2] relative to its mass over the widened range; a continuous value's
// is the truncated density in the transformed space (for a log range without the
// 1/x Jacobian, as in Optuna: it cancels in TPE's ratio l(x)/g(x)).
double log_pdf_numeric(const NumericKernels& k, std::size_t kernel, double x) {
  const double mu = k.mus[kernel];
  const double sigma = k.sigmas[kernel];
  const double a = (k.low - mu) / sigma;
  const double b = (k.high - mu) / sigma;
  if (k.step == 0) return truncnorm::logpdf(k.log ? std::log(x) : x, a, b, mu, sigma);
  const double left = k.log ? std::log(x - k.step / 2) : x - k.step / 2;
  const double right = k.log ? std::log(x + k.step / 2) : x + k.step / 2;
  return truncnorm::log_gauss_mass((left - mu) / sigma, (right - mu) / sigma) -
         truncnorm::log_gauss_mass(a, b);
}

}  // namespace

std::vector<double> tpe_weights(int n) {
  if (n < 25) return std::vector<double>(static_cast<std::size_t>(std::max(n, 0)), 1.0);
  const int ramp = n - 25;
  std::vector<double> weights;
  const double start = 1.0 / n;
  for (int i = 0; i < ramp; ++i)  // numpy.linspace(1/n, 1, n - 25)
    weights.push_back(ramp == 1 ? start : start + i * (1.0 - start) / (ramp - 1));
  weights.insert(weights.end(), 25, 1.0);
  return weights;
}

ParzenKernels parzen_kernels(const Distribution& distribution,
                             const std::vector<double>& observations) {
  if (const auto* categorical = std::get_if<CategoricalDistribution>(&distribution))
    return categorical_kernels(categorical->choices.size(), observations);
  if (const auto* range = std::get_if<IntDistribution>(&distribution))
    return numeric_kernels(static_cast<double>(range->low), static_cast<double>(range->high),
                           static_cast<double>(range->step), range->log, observations);
  const auto& range = std::get<FloatDistribution>(distribution);
  return numeric_kernels(range.low, range.high, range.step.value_or(0.0), range.log, observations);
}

ParzenEstimator::ParzenEstimator(const std::vector<Distribution>& space,
                                 const std::vector<std::vector<double>>& observations) {
  if (space.empty() || observations.size() != space.size())
    throw InternalError("Parzen estimator: one observation list per parameter expected");
  const int n = static_cast<int>(observations.front().size());
  weights_ = tpe_weights(n);
  weights_.push_back(kPriorWeight);
  if (n == 0) weights_ = {1.0};
  const double total = std::accumulate(weights_.begin(), weights_.end(), 0.0);
  for (double& weight : weights_) weight /= total;
  for (std::size_t p = 0; p < space.size(); ++p)
    kernels_.push_back(parzen_kernels(space[p], observations[p]));
}

std::vector<std::vector<double>> ParzenEstimator::sample(TrialRng& rng, int count) const {
  std::vector<std::vector<double>> points;
  for (int c = 0; c < count; ++c) {
    const std::size_t kernel = pick(weights_, rng.uniform());
    std::vector<double> point;
    for (const auto& kernels : kernels_) {
      if (const auto* categorical = std::get_if<CategoricalKernels>(&kernels))
        point.push_back(
            static_cast<double>(pick(categorical->probabilities[kernel], rng.uniform())));
      else
        point.push_back(sample_numeric(std::get<NumericKernels>(kernels), kernel, rng));
    }
    points.push_back(std::move(point));
  }
  return points;
}

double ParzenEstimator::log_pdf(const std::vector<double>& point) const {
  std::vector<double> terms(weights_.size());
  for (std::size_t k = 0; k < weights_.size(); ++k) {
    double term = std::log(weights_[k]);
    for (std::size_t p = 0; p < kernels_.size(); ++p) {
      if (const auto* categorical = std::get_if<CategoricalKernels>(&kernels_[p]))
        term += std::log(
            categorical->probabilities[k][static_cast<std::size_t>(std::llround(point[p]))]);
      else
        term += log_pdf_numeric(std::get<NumericKernels>(kernels_[p]), k, point[p]);
    }
    terms[k] = term;
  }
  // log-sum-exp; a point outside every kernel has probability zero.
  const double high = *std::max_element(terms.begin(), terms.end());
  if (high == -std::numeric_limits<double>::infinity()) return high;
  double sum = 0;
  for (double term : terms) sum += std::exp(term - high);
  return high + std::log(sum);
}

}  // namespace kiln::sweep
