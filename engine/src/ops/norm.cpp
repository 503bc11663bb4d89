#include "ops/norm.h"

#include <cmath>

namespace kiln::ops {
namespace {

// NCHW viewed per channel: element (n, c, i) of a [N, C, S] array.
struct ChannelView {
  std::int64_t batch, channels, spatial;
  explicit ChannelView(const Tensor& x)
      : batch(x.dim(0)), channels(x.dim(1)), spatial(x.numel() / (x.dim(0) * x.dim(1))) {}
  std::int64_t count() const { return batch * spatial; }
  template <class F>
  void for_channel(std::int64_t c, F&& f) const {
    for (std::int64_t n = 0; n < batch; ++n) {
      const std::int64_t base = (n * channels + c) * spatial;
      for (std::int64_t i = 0; i < spatial; ++i) f(base + i);
    }
  }
};

}  // namespace

template <>
void BatchNorm2d<DeviceType::CPU>::forward_train(const Tensor& x, const Tensor& gamma,
                                                 const Tensor& beta, float eps, float momentum,
                                                 Tensor& running_mean, Tensor& running_var,
                                                 Tensor& y, BatchNormState& saved) {
  const ChannelView view(x);
  const float* in = x.data<float>();
  float* out = y.data<float>();
  float *mean = saved.mean.data<float>(), *inv_std = saved.inv_std.data<float>();
  float *rmean = running_mean.data<float>(), *rvar = running_var.data<float>();
  const float* g = gamma.data<float>();
  const float* b = beta.data<float>();
  const auto count = static_cast<double>(view.count());
  for (std::int64_t c = 0; c < view.channels; ++c) {
    double sum = 0, sum_squares = 0;
    view.for_channel(c, [&](std::int64_t i) { sum += in[i]; });
    const double mu = sum / count;
    view.for_channel(c, [&](std::int64_t i) { sum_squares += (in[i] - mu) * (in[i] - mu); });
    const double variance = sum_squares / count;
    mean[c] = static_cast<float>(mu);
    inv_std[c] = static_cast<float>(1.0 / std::sqrt(variance + eps));
    view.for_channel(c, [&](std::int64_t i) { out[i] = (in[i] - mean[c]) * inv_std[c] * g[c] + b[c]; });
    const double unbiased = count > 1 ? sum_squares / (count - 1) : variance;
    rmean[c] = static_cast<float>((1 - momentum) * rmean[c] + momentum * mu);
    rvar[c] = static_cast<float>((1 - momentum) * rvar[c] + momentum * unbiased);
  }
}

template <>
void BatchNorm2d<DeviceType::CPU>::forward_eval(const Tensor& x, const Tensor& gamma,
                                                const Tensor& beta, float eps,
                                                const Tensor& running_mean,
                                                const Tensor& running_var, Tensor& y) {
  const ChannelView view(x);
  const float* in = x.data<float>();
  float* out = y.data<float>();
  const float *rmean = running_mean.data<float>(), *rvar = running_var.data<float>();
  const float *g = gamma.data<float>(), *b = beta.data<float>();
  for (std::int64_t c = 0; c < view.channels; ++c) {
    const float scale = g[c] / std::sqrt(rvar[c] + eps);
    view.for_channel(c, [&](std::int64_t i) { out[i] = (in[i] - rmean[c]) * scale + b[c]; });
  }
}

template <>
void BatchNorm2d<DeviceType::CPU>::backward(const Tensor& x, const Tensor& gamma,
                                            const BatchNormState& saved, const Tensor& dy,
                                            Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const ChannelView view(x);
  const float *in = x.data<float>(), *grad = dy.data<float>(), *g = gamma.data<float>();
  const float *mean = saved.mean.data<float>(), *inv_std = saved.inv_std.data<float>();
  float *result = dx.data<float>(), *dg = dgamma.data<float>(), *db = dbeta.data<float>();
  const auto count = static_cast<double>(view.count());
  for (std::int64_t c = 0; c < view.channels; ++c) {
    double sum_dy = 0, sum_dy_xhat = 0;
    view.for_channel(c, [&](std::int64_t i) {
      sum_dy += grad[i];
      sum_dy_xhat += grad[i] * (in[i] - mean[c]) * inv_std[c];
    });
    dg[c] += static_cast<float>(sum_dy_xhat);
    db[c] += static_cast<float>(sum_dy);
    const double scale = g[c] * inv_std[c] / count;
    view.for_channel(c, [&](std::int64_t i) {
      const double xhat = (in[i] - mean[c]) * inv_std[c];
      result[i] = static_cast<float>(scale * (count * grad[i] - sum_dy - xhat * sum_dy_xhat));
    });
  }
}

template <>
void LayerNorm<DeviceType::CPU>::forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                         float eps, Tensor& y, Tensor& mean, Tensor& inv_std) {
  const std::int64_t features = gamma.numel(), rows = x.numel() / features;
  const float *in = x.data<float>(), *g = gamma.data<float>(), *b = beta.data<float>();
  float *out = y.data<float>(), *mu = mean.data<float>(), *rstd = inv_std.data<float>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = in + r * features;
    double sum = 0, sum_squares = 0;
    for (std::int64_t f = 0; f < features; ++f) sum += row[f];
    const double m = sum / static_cast<double>(features);
    for (std::int64_t f = 0; f < features; ++f) sum_squares += (row[f] - m) * (row[f] - m);
    mu[r] = static_cast<float>(m);
    rstd[r] = static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(features) + eps));
    for (std::int64_t f = 0; f < features; ++f)
      out[r * features + f] = (row[f] - mu[r]) * rstd[r] * g[f] + b[f];
  }
}

template <>
void LayerNorm<DeviceType::CPU>::backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                          const Tensor& inv_std, const Tensor& dy, Tensor& dx,
                                          Tensor& dgamma, Tensor& dbeta) {
  const std::int64_t features = gamma.numel(), rows = x.numel() / features;
  const float *in = x.data<float>(), *grad = dy.data<float>(), *g = gamma.data<float>();
  const float *mu = mean.data<float>(), *rstd = inv_std.data<float>();
  float *result = dx.data<float>(), *dg = dgamma.data<float>(), *db = dbeta.data<float>();
  const auto n = static_cast<double>(features);
  for (std::int64_t r = 0; r < rows; ++r) {
    double sum_g = 0, sum_g_xhat = 0;
    for (std::int64_t f = 0; f < features; ++f) {
      const std::int64_t i = r * features + f;
      const double xhat = (in[i] - mu[r]) * rstd[r];
      const double gi = grad[i] * g[f];
      sum_g += gi;
      sum_g_xhat += gi * xhat;
      dg[f] += static_cast<float>(grad[i] * xhat);
      db[f] += grad[i];
    }
    for (std::int64_t f = 0; f < features; ++f) {
      const std::int64_t i = r * features + f;
      const double xhat = (in[i] - mu[r]) * rstd[r];
      result[i] = static_cast<float>(rstd[r] / n * (n * grad[i] * g[f] - sum_g - xhat * sum_g_xhat));
    }
  }
}

void batch_norm2d_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                float momentum, Tensor& running_mean, Tensor& running_var,
                                Tensor& y, BatchNormState& saved) {
  check_shape("batch_norm2d", "output", y, x.shape());
  dispatch<BatchNorm2d>(x.device(), "batch_norm2d", [&](auto op) {
    op.forward_train(x, gamma, beta, eps, momentum, running_mean, running_var, y, saved);
  });
}
void batch_norm2d_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                               const Tensor& running_mean, const Tensor& running_var, Tensor& y) {
  check_shape("batch_norm2d", "output", y, x.shape());
  dispatch<BatchNorm2d>(x.device(), "batch_norm2d", [&](auto op) {
    op.forward_eval(x, gamma, beta, eps, running_mean, running_var, y);
  });
}
void batch_norm2d_backward(const Tensor& x, const Tensor& gamma, const BatchNormState& saved,
                           const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  check_shape("batch_norm2d_backward", "input gradient", dx, x.shape());
  dispatch<BatchNorm2d>(x.device(), "batch_norm2d",
                        [&](auto op) { op.backward(x, gamma, saved, dy, dx, dgamma, dbeta); });
}
void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                        Tensor& y, Tensor& mean, Tensor& inv_std) {
  check_shape("layer_norm", "output", y, x.shape());
  dispatch<LayerNorm>(x.device(), "layer_norm",
                      [&](auto op) { op.forward(x, gamma, beta, eps, y, mean, inv_std); });
}
void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                         const Tensor& inv_std, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                         Tensor& dbeta) {
  check_shape("layer_norm_backward", "input gradient", dx, x.shape());
  dispatch<LayerNorm>(x.device(), "layer_norm", [&](auto op) {
    op.backward(x, gamma, mean, inv_std, dy, dx, dgamma, dbeta);
  });
}

}  // namespace kiln::ops
