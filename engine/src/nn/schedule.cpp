#include <kiln/error.h>
#include <kiln/nn/schedule.h>

#include <fmt/format.h>

#include <cmath>

namespace kiln::nn {
namespace {

constexpr double kPi = 3.14159265358979323846;

// torch's _annealing_cos: from `start` at pct 0 to `end` at pct 1.
double anneal_cos(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
}

double onecycle(const Schedule& s, std::int64_t step) {
  const double initial = s.lr / s.div_factor;
  const double final_lr = initial / s.final_div_factor;
  const double phase_end = s.pct_start * static_cast<double>(s.total_steps) - 1.0;
  const double last = static_cast<double>(s.total_steps) - 1.0;
  const auto t = static_cast<double>(step);
  if (t <= phase_end) return anneal_cos(initial, s.lr, phase_end > 0 ? t / phase_end : 1.0);
  return anneal_cos(s.lr, final_lr, (t - phase_end) / (last - phase_end));
}

}  // namespace

void Schedule::check() const {
  if (kind != "constant" && kind != "step" && kind != "cosine" && kind != "onecycle")
    throw ConfigError(fmt::format("schedule '{}': expected constant, step, cosine or onecycle", kind));
  if (!(lr > 0) || total_steps < 1 || warmup_steps < 0 || step_size < 1 || !(gamma > 0) ||
      min_lr < 0 || min_lr > lr || !(pct_start > 0 && pct_start < 1) || !(div_factor > 0) ||
      !(final_div_factor > 0))
    throw ConfigError(fmt::format(
        "schedule: lr > 0, warmup >= 0, step_size >= 1, gamma > 0, 0 <= min_lr <= lr, "
        "pct_start in (0, 1) and the divisors > 0 are required (lr {}, warmup {}, step_size {}, "
        "gamma {}, min_lr {}, pct_start {})",
        lr, warmup_steps, step_size, gamma, min_lr, pct_start));
}

double Schedule::at(std::int64_t step) const {
  double value = lr;
  const auto t = static_cast<double>(step);
  if (kind == "step") value = lr * std::pow(gamma, static_cast<double>(step / step_size));
  if (kind == "cosine") value = anneal_cos(lr, min_lr, t / static_cast<double>(total_steps));
  if (kind == "onecycle") value = onecycle(*this, step);
  if (step < warmup_steps) value *= (t + 1.0) / static_cast<double>(warmup_steps);
  return value;
}

}  // namespace kiln::nn
