#include "sweep/truncnorm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace kiln::sweep::truncnorm {
namespace {

const double kLogSqrt2Pi = 0.5 * std::log(2 * std::numbers::pi);

double ndtr(double a) { return 0.5 * std::erfc(-a / std::numbers::sqrt2); }

double log_sum(double log_p, double log_q) {
  const double high = std::max(log_p, log_q);
  if (high == -std::numeric_limits<double>::infinity()) return high;
  return high + std::log1p(std::exp(-std::abs(log_p - log_q)));
}

// log(p - q) from log p > log q.
double log_diff(double log_p, double log_q) { return log_p + std::log1p(-std::exp(log_q - log_p)); }

// x with log Phi(x) = y (y <= 0), by Newton's method on log Phi from Optuna's
// initial guesses: the Gaussian tail asymptote for y far below zero, the logistic
// approximation of Phi otherwise. For y near 0 it solves for -x on the other tail,
// where log Phi is accurate.
double ndtri_exp(double y) {
  const bool flipped = y > -1e-2;
  const double z = flipped ? std::log(-std::expm1(y)) : y;
  double x = z < -5 ? -std::sqrt(-2.0 * (z + kLogSqrt2Pi))
                    : -std::sqrt(3.0) / std::numbers::pi * std::log(std::expm1(-z));
  for (int iteration = 0; iteration < 100; ++iteration) {
    const double log_ndtr_x = log_ndtr(x);
    const double log_pdf_x = -0.5 * x * x - kLogSqrt2Pi;
    const double dx = (log_ndtr_x - z) * std::exp(log_ndtr_x - log_pdf_x);
    x -= dx;
    if (std::abs(dx) < 1e-8 * std::abs(x)) break;
  }
  return flipped ? -x : x;
}

}  // namespace

double log_ndtr(double a) {
  if (a > 6) return -ndtr(-a);  // log(1 - e) = -e to double precision here
  if (a > -20) return std::log(ndtr(a));
  // The asymptotic series of the lower tail: Phi(a) ~ phi(a) / -a * sum_k
  // (-1)^k (2k - 1)!! / a^(2k), summed until it stops changing.
  const double log_lhs = -0.5 * a * a - std::log(-a) - kLogSqrt2Pi;
  double last_total = 0;
  double total = 1;
  double numerator = 1;
  double denominator = 1;
  double sign = 1;
  for (int i = 1; std::abs(last_total - total) > std::numeric_limits<double>::epsilon(); ++i) {
    last_total = total;
    sign = -sign;
    denominator /= a * a;
    numerator *= 2 * i - 1;
    total += sign * numerator * denominator;
  }
  return log_lhs + std::log(total);
}

double log_gauss_mass(double a, double b) {
  if (b <= 0) return log_diff(log_ndtr(b), log_ndtr(a));
  if (a > 0) return log_diff(log_ndtr(-a), log_ndtr(-b));
  // Straddling zero, the mass is near 1: 1 - Phi(a) - Phi(-b) avoids cancellation.
  return std::log1p(-ndtr(a) - ndtr(-b));
}

double ppf(double q, double a, double b) {
  if (a == b) return std::numeric_limits<double>::quiet_NaN();
  if (q <= 0) return a;
  if (q >= 1) return b;
  const double log_mass = log_gauss_mass(a, b);
  double x = 0;
  if (a < 0) {
    x = ndtri_exp(log_sum(log_ndtr(a), std::log(q) + log_mass));
  } else {
    x = -ndtri_exp(log_sum(log_ndtr(-b), std::log1p(-q) + log_mass));
  }
  return std::clamp(x, a, b);
}

double logpdf(double x, double a, double b, double loc, double scale) {
  if (a == b) return std::numeric_limits<double>::quiet_NaN();
  const double z = (x - loc) / scale;
  if (z < a || z > b) return -std::numeric_limits<double>::infinity();
  return -0.5 * z * z - kLogSqrt2Pi - log_gauss_mass(a, b) - std::log(scale);
}

}  // namespace kiln::sweep::truncnorm
