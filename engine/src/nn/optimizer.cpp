// SGD and AdamW with torch.optim's update rules and torch's float32 arithmetic:
// scalar coefficients are computed in double (as Python floats are) and applied
// to float32 tensors as float, in the same order of operations, so that a kiln
// step matches a torch step to a few float ulps.
#include <kiln/error.h>
#include <kiln/nn/optimizer.h>

#include <cmath>
#include <string>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace kiln::nn {

Optimizer::~Optimizer() = default;

namespace {

void check_grads(const std::vector<Parameter>& parameters) {
  for (const Parameter& p : parameters)
    if (p.grad.size() != p.value.size())
      throw InternalError("optimizer: parameter " + p.name + " has " +
                          std::to_string(p.value.size()) + " values but " +
                          std::to_string(p.grad.size()) + " gradients");
}

// Per-parameter state vectors, keyed by the parameter's position in the list. The
// first step fixes the layout; a later list of another shape is a bug in the caller.
class StateLayout {
 public:
  // Returns true on the first call (the state is fresh).
  bool bind(const std::vector<Parameter>& parameters, const char* optimizer) {
    if (!bound_) {
      for (const Parameter& p : parameters) sizes_.push_back(p.value.size());
      bound_ = true;
      return true;
    }
    bool same = sizes_.size() == parameters.size();
    for (std::size_t i = 0; same && i < sizes_.size(); ++i)
      same = sizes_[i] == parameters[i].value.size();
    if (!same)
      throw InternalError(std::string(optimizer) + ": the parameter list changed shape between " +
                          "steps (" + std::to_string(sizes_.size()) + " parameters at the first " +
                          "step, " + std::to_string(parameters.size()) + " now)");
    return false;
  }

 private:
  bool bound_ = false;
  std::vector<std::size_t> sizes_;
};

void check_non_negative(double value, const char* what) {
  if (!(value >= 0.0) || !std::isfinite(value))
    throw ConfigError(std::string("optimizer: ") + what + " must be a finite value >= 0, got " +
                      std::to_string(value));
}

struct SgdScalars {
  float lr, weight_decay;
  float buffer_momentum;  // 0 on the first step, when torch sets b = d
  float nesterov_momentum;
};

// torch: d = g + wd p; b = d on the first step, else mu b + d; d = nesterov ? d +
// mu b : b; p += -lr d. One branch-free loop per case, so that each vectorizes.
// On the first step b = 0 b + d equals torch's copy of d (a -0 becomes +0).
template <bool kDecay, bool kMomentum, bool kNesterov>
void sgd_update(const SgdScalars& s, std::size_t n, float* __restrict value,
                const float* __restrict grad, float* __restrict buffer) {
  for (std::size_t k = 0; k < n; ++k) {
    float d = grad[k];
    if constexpr (kDecay) d += s.weight_decay * value[k];
    if constexpr (kMomentum) {
      buffer[k] = s.buffer_momentum * buffer[k] + d;
      d = kNesterov ? d + s.nesterov_momentum * buffer[k] : buffer[k];
    }
    value[k] -= s.lr * d;
  }
}

using SgdUpdate = void (*)(const SgdScalars&, std::size_t, float*, const float*, float*);

SgdUpdate pick_sgd_update(const SgdOptions& o) {
  const bool decay = o.weight_decay != 0.0;  // torch skips the term when it is 0
  if (o.momentum == 0.0)
    return decay ? sgd_update<true, false, false> : sgd_update<false, false, false>;
  if (o.nesterov) return decay ? sgd_update<true, true, true> : sgd_update<false, true, true>;
  return decay ? sgd_update<true, true, false> : sgd_update<false, true, false>;
}

class Sgd final : public Optimizer {
 public:
  explicit Sgd(const SgdOptions& options) : options_(options), update_(pick_sgd_update(options)) {}

  void step(std::vector<Parameter>& parameters) override {
    check_grads(parameters);
    const bool momentum = options_.momentum != 0.0;
    const bool first = layout_.bind(parameters, "SGD");
    if (first && momentum) {
      for (const Parameter& p : parameters) momentum_.emplace_back(p.value.size(), 0.0f);
    }
    const auto mu = static_cast<float>(options_.momentum);
    const SgdScalars scalars{static_cast<float>(options_.lr),
                             static_cast<float>(options_.weight_decay), first ? 0.0f : mu, mu};
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      Parameter& p = parameters[i];
      update_(scalars, p.value.size(), p.value.data(), p.grad.data(),
              momentum ? momentum_[i].data() : nullptr);
    }
  }

  void set_lr(double lr) override { options_.lr = lr; }
  double lr() const override { return options_.lr; }

 private:
  SgdOptions options_;
  SgdUpdate update_;
  StateLayout layout_;
  std::vector<std::vector<float>> momentum_;
};

struct Coefficients {
  float decay, beta1, beta2, one_minus_beta1, one_minus_beta2, step_size, correction2_sqrt, eps;
};

// torch: p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p += -(lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
void adamw_update(const Coefficients& c, std::size_t n, float* __restrict value,
                  const float* __restrict grad, float* __restrict m, float* __restrict v) {
  std::size_t k = 0;
#if defined(__SSE2__)
  // GCC leaves sqrtf scalar (it may set errno) unless the whole translation unit is
  // built with -fno-math-errno; a function attribute cannot set that. The vector
  // loop makes the update 4x faster (784-256-128-10 MLP: 2.6 -> 0.65 ms on 2 EPYC
  // cores) and does lane for lane the IEEE operations of the scalar loop below.
  const __m128 decay = _mm_set1_ps(c.decay), beta1 = _mm_set1_ps(c.beta1);
  const __m128 beta2 = _mm_set1_ps(c.beta2), one_minus_beta1 = _mm_set1_ps(c.one_minus_beta1);
  const __m128 one_minus_beta2 = _mm_set1_ps(c.one_minus_beta2);
  const __m128 step_size = _mm_set1_ps(c.step_size), eps = _mm_set1_ps(c.eps);
  const __m128 correction2_sqrt = _mm_set1_ps(c.correction2_sqrt);
  for (; k + 4 <= n; k += 4) {
    const __m128 g = _mm_loadu_ps(grad + k);
    const __m128 p = _mm_mul_ps(_mm_loadu_ps(value + k), decay);
    const __m128 mk =
        _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(m + k), beta1), _mm_mul_ps(one_minus_beta1, g));
    const __m128 vk = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(v + k), beta2),
                                 _mm_mul_ps(_mm_mul_ps(one_minus_beta2, g), g));
    const __m128 denominator = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vk), correction2_sqrt), eps);
    _mm_storeu_ps(m + k, mk);
    _mm_storeu_ps(v + k, vk);
    _mm_storeu_ps(value + k, _mm_sub_ps(p, _mm_mul_ps(step_size, _mm_div_ps(mk, denominator))));
  }
#endif
  for (; k < n; ++k) {
    value[k] *= c.decay;
    m[k] = m[k] * c.beta1 + c.one_minus_beta1 * grad[k];
    v[k] = v[k] * c.beta2 + c.one_minus_beta2 * grad[k] * grad[k];
    const float denominator = std::sqrt(v[k]) / c.correction2_sqrt + c.eps;
    value[k] -= c.step_size * (m[k] / denominator);
  }
}

class AdamW final : public Optimizer {
 public:
  explicit AdamW(const AdamWOptions& options) : options_(options) {}

  void step(std::vector<Parameter>& parameters) override {
    check_grads(parameters);
    if (layout_.bind(parameters, "AdamW")) {
      first_moment_.resize(parameters.size());
      second_moment_.resize(parameters.size());
      for (std::size_t i = 0; i < parameters.size(); ++i) {
        first_moment_[i].assign(parameters[i].value.size(), 0.0f);
        second_moment_[i].assign(parameters[i].value.size(), 0.0f);
      }
    }
    ++steps_;
    const Coefficients c = coefficients();
    for (std::size_t i = 0; i < parameters.size(); ++i)
      adamw_update(c, parameters[i].value.size(), parameters[i].value.data(),
                   parameters[i].grad.data(), first_moment_[i].data(), second_moment_[i].data());
  }

  void set_lr(double lr) override { options_.lr = lr; }
  double lr() const override { return options_.lr; }

 private:
  Coefficients coefficients() const {
    const auto t = static_cast<double>(steps_);
    return {static_cast<float>(1.0 - options_.lr * options_.weight_decay),
            static_cast<float>(options_.beta1),
            static_cast<float>(options_.beta2),
            static_cast<float>(1.0 - options_.beta1),
            static_cast<float>(1.0 - options_.beta2),
            static_cast<float>(options_.lr / (1.0 - std::pow(options_.beta1, t))),
            static_cast<float>(std::sqrt(1.0 - std::pow(options_.beta2, t))),
            static_cast<float>(options_.eps)};
  }

  AdamWOptions options_;
  StateLayout layout_;
  std::int64_t steps_ = 0;
  std::vector<std::vector<float>> first_moment_;
  std::vector<std::vector<float>> second_moment_;
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(const SgdOptions& options) {
  check_non_negative(options.lr, "SGD lr");
  check_non_negative(options.momentum, "SGD momentum");
  check_non_negative(options.weight_decay, "SGD weight_decay");
  if (options.nesterov && options.momentum == 0.0)
    throw ConfigError("optimizer: SGD nesterov needs a momentum > 0");
  return std::make_unique<Sgd>(options);
}

std::unique_ptr<Optimizer> make_adamw(const AdamWOptions& options) {
  check_non_negative(options.lr, "AdamW lr");
  check_non_negative(options.eps, "AdamW eps");
  check_non_negative(options.weight_decay, "AdamW weight_decay");
  for (const double beta : {options.beta1, options.beta2})
    if (!(beta >= 0.0 && beta < 1.0))
      throw ConfigError("optimizer: AdamW betas must lie in [0, 1), got " + std::to_string(beta));
  return std::make_unique<AdamW>(options);
}

}  // namespace kiln::nn
