// Private to the sweep area: the truncated normal distribution that TPE's kernels
// use, in log space for accuracy far in the tails. The same numerics as Optuna's
// optuna/samplers/_tpe/_truncnorm.py (itself after SciPy's truncnorm): a standard
// normal truncated to [a, b], shifted by `loc` and scaled by `scale`.
#pragma once

namespace kiln::sweep::truncnorm {

// log Phi(a), Phi the standard normal CDF; accurate for a far below zero.
double log_ndtr(double a);
// log(Phi(b) - Phi(a)) for a <= b, worked on whichever tail is accurate.
double log_gauss_mass(double a, double b);
// The x in [a, b] with (Phi(x) - Phi(a)) / (Phi(b) - Phi(a)) = q, q in [0, 1].
double ppf(double q, double a, double b);
// log density at x of the normal(loc, scale) truncated to [loc + a scale, loc + b scale];
// -inf outside.
double logpdf(double x, double a, double b, double loc, double scale);

}  // namespace kiln::sweep::truncnorm
