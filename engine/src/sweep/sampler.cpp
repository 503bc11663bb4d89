// The grid and random samplers, and make_sampler. TPE is sampler_tpe.cpp.
#include "sweep/samplers.h"

#include <kiln/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln::sweep {
namespace {

// The number of values a grid enumerates for a parameter; 0 for a continuous range.
std::int64_t value_count(const Distribution& distribution) {
  if (const auto* categorical = std::get_if<CategoricalDistribution>(&distribution))
    return static_cast<std::int64_t>(categorical->choices.size());
  if (const auto* range = std::get_if<IntDistribution>(&distribution))
    return (range->high - range->low) / range->step + 1;
  return 0;
}

// Trial n takes the n-th combination in row-major order over the parameters in
// file order: the last parameter varies fastest, like nested loops written in the
// file's order. (Optuna's GridSampler visits its grid in a random order instead;
// a fixed order makes a grid sweep's trial list readable and resumable.)
class GridSampler final : public Sampler {
 public:
  explicit GridSampler(const SweepSpec& spec) : spec_(spec), size_(grid_size(spec).value_or(0)) {}

  std::map<std::string, double> sample(const Study&, int trial_number) override {
    if (trial_number < 0 || trial_number >= size_)
      throw InternalError(fmt::format("grid sweep: trial {} asked of a grid of {} combinations",
                                      trial_number, size_));
    std::map<std::string, double> params;
    std::int64_t rest = trial_number;
    for (auto param = spec_.params.rbegin(); param != spec_.params.rend(); ++param) {
      const std::int64_t count = value_count(param->distribution);
      const std::int64_t index = rest % count;
      rest /= count;
      if (const auto* range = std::get_if<IntDistribution>(&param->distribution))
        params[param->path] = static_cast<double>(range->low + index * range->step);
      else
        params[param->path] = static_cast<double>(index);
    }
    return params;
  }

 private:
  SweepSpec spec_;
  std::int64_t size_;
};

class RandomSampler final : public Sampler {
 public:
  explicit RandomSampler(const SweepSpec& spec) : spec_(spec) {}
  std::map<std::string, double> sample(const Study&, int trial_number) override {
    return sample_randomly(spec_, trial_number);
  }

 private:
  SweepSpec spec_;
};

// Uniform on [low, high] in the transformed space, then mapped back: Optuna's
// _SearchSpaceTransform bounds, widened by half a step on each side for stepped
// and integer ranges so that the end values are as likely as the inner ones.
double sample_float(const FloatDistribution& range, TrialRng& rng) {
  if (range.log) {
    const double low = std::log(range.low);
    const double value = std::exp(low + rng.uniform() * (std::log(range.high) - low));
    return std::clamp(value, range.low, std::nextafter(range.high, range.low));
  }
  if (range.step) {
    const double step = *range.step;
    const double drawn = range.low - step / 2 + rng.uniform() * (range.high - range.low + step);
    const double value = std::nearbyint((drawn - range.low) / step) * step + range.low;
    return std::clamp(value, range.low, range.high);
  }
  const double value = range.low + rng.uniform() * (range.high - range.low);
  return std::min(value, std::nextafter(range.high, range.low));
}

double sample_int(const IntDistribution& range, TrialRng& rng) {
  const double low = static_cast<double>(range.low);
  const double high = static_cast<double>(range.high);
  double value = 0;
  if (range.log) {
    const double log_low = std::log(low - 0.5);
    value = std::round(std::exp(log_low + rng.uniform() * (std::log(high + 0.5) - log_low)));
  } else {
    const double step = static_cast<double>(range.step);
    const double drawn = low - step / 2 + rng.uniform() * (high - low + step);
    value = std::floor((drawn - low) / step + 0.5) * step + low;
  }
  return std::clamp(value, low, high);
}

}  // namespace

Sampler::~Sampler() = default;

double sample_uniformly(const Distribution& distribution, TrialRng& rng) {
  if (const auto* categorical = std::get_if<CategoricalDistribution>(&distribution))
    return static_cast<double>(rng.below(categorical->choices.size()));
  if (const auto* range = std::get_if<IntDistribution>(&distribution))
    return sample_int(*range, rng);
  return sample_float(std::get<FloatDistribution>(distribution), rng);
}

std::map<std::string, double> sample_randomly(const SweepSpec& spec, int trial_number) {
  std::map<std::string, double> params;
  for (std::size_t i = 0; i < spec.params.size(); ++i) {
    TrialRng rng(spec.sampler.seed, trial_number, static_cast<std::uint32_t>(i));
    params[spec.params[i].path] = sample_uniformly(spec.params[i].distribution, rng);
  }
  return params;
}

std::optional<std::int64_t> grid_size(const SweepSpec& spec) {
  std::int64_t size = 1;
  for (const auto& param : spec.params) {
    const std::int64_t count = value_count(param.distribution);
    if (count == 0) return std::nullopt;
    const bool overflows = size > std::numeric_limits<std::int64_t>::max() / count;
    size = overflows ? std::numeric_limits<std::int64_t>::max() : size * count;
  }
  return size;
}

std::unique_ptr<Sampler> make_sampler(const SweepSpec& spec) {
  switch (spec.sampler.kind) {
    case SamplerKind::Grid:
      if (!grid_size(spec))
        throw ConfigError(
            fmt::format("{}: sweep: the grid sampler needs `choice` or `int` values", spec.origin));
      return std::make_unique<GridSampler>(spec);
    case SamplerKind::Random:
      return std::make_unique<RandomSampler>(spec);
    case SamplerKind::Tpe:
      return make_tpe_sampler(spec);
  }
  throw InternalError("sweep: unknown sampler kind");
}

}  // namespace kiln::sweep
