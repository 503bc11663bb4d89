// CUDA twins of batch norm and layer norm: kernels first, launchers after. The
// statistics are reduced in double, as the CPU twins do, one block per channel
// (batch norm) or per row (layer norm), in a fixed order, so results repeat run to
// run and stay within float rounding of the CPU's.
#include "ops/cuda_launch.cuh"
#include "ops/norm.h"

namespace kiln::ops {
namespace {

using cuda_detail::block_sum;
using cuda_detail::first_index;
using cuda_detail::grid_stride;
using cuda_detail::launch;

constexpr int kBlock = 512;

// Element j of channel c in an [N, C, S] array (j over N x S).
__device__ inline std::int64_t channel_index(std::int64_t j, std::int64_t c, std::int64_t channels,
                                             std::int64_t spatial) {
  return ((j / spatial) * channels + c) * spatial + j % spatial;
}

struct BatchNormArgs {
  std::int64_t batch, channels, spatial;
  float eps, momentum;
};

__global__ void __launch_bounds__(kBlock)
    batch_norm_train_kernel(BatchNormArgs a, const float* __restrict__ x,
                            const float* __restrict__ gamma, const float* __restrict__ beta,
                            float* __restrict__ y, float* __restrict__ mean,
                            float* __restrict__ inv_std, float* __restrict__ running_mean,
                            float* __restrict__ running_var) {
  __shared__ double scratch[kBlock / 32];
  const std::int64_t c = blockIdx.x, count = a.batch * a.spatial;
  double sum = 0.0;
  for (std::int64_t j = threadIdx.x; j < count; j += kBlock)
    sum += x[channel_index(j, c, a.channels, a.spatial)];
  const double mu = block_sum<kBlock>(sum, scratch) / static_cast<double>(count);
  double squares = 0.0;
  for (std::int64_t j = threadIdx.x; j < count; j += kBlock) {
    const double d = x[channel_index(j, c, a.channels, a.spatial)] - mu;
    squares += d * d;
  }
  const double sum_squares = block_sum<kBlock>(squares, scratch);
  const double variance = sum_squares / static_cast<double>(count);
  const auto m = static_cast<float>(mu);
  const auto r = static_cast<float>(1.0 / sqrt(variance + a.eps));
  const float g = gamma[c], b = beta[c];
  for (std::int64_t j = threadIdx.x; j < count; j += kBlock) {
    const std::int64_t i = channel_index(j, c, a.channels, a.spatial);
    y[i] = (x[i] - m) * r * g + b;
  }
  if (threadIdx.x != 0) return;
  mean[c] = m;
  inv_std[c] = r;
  const double unbiased = count > 1 ? sum_squares / static_cast<double>(count - 1) : variance;
  running_mean[c] = static_cast<float>((1 - a.momentum) * running_mean[c] + a.momentum * mu);
  running_var[c] = static_cast<float>((1 - a.momentum) * running_var[c] + a.momentum * unbiased);
}

__global__ void batch_norm_eval_kernel(std::int64_t n, std::int64_t channels, std::int64_t spatial,
                                       float eps, const float* __restrict__ x,
                                       const float* __restrict__ gamma,
                                       const float* __restrict__ beta,
                                       const float* __restrict__ running_mean,
                                       const float* __restrict__ running_var,
                                       float* __restrict__ y) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const std::int64_t c = (i / spatial) % channels;
    const float scale = gamma[c] / sqrtf(running_var[c] + eps);
    y[i] = (x[i] - running_mean[c]) * scale + beta[c];
  }
}

__global__ void __launch_bounds__(kBlock)
    batch_norm_backward_kernel(BatchNormArgs a, const float* __restrict__ x,
                               const float* __restrict__ gamma, const float* __restrict__ mean,
                               const float* __restrict__ inv_std, const float* __restrict__ dy,
                               float* __restrict__ dx, float* __restrict__ dgamma,
                               float* __restrict__ dbeta) {
  __shared__ double scratch[kBlock / 32];
  const std::int64_t c = blockIdx.x, count = a.batch * a.spatial;
  const float m = mean[c], r = inv_std[c];
  double sum_dy = 0.0, sum_dy_xhat = 0.0;
  for (std::int64_t j = threadIdx.x; j < count; j += kBlock) {
    const std::int64_t i = channel_index(j, c, a.channels, a.spatial);
    sum_dy += dy[i];
    sum_dy_xhat += dy[i] * (x[i] - m) * r;
  }
  sum_dy = block_sum<kBlock>(sum_dy, scratch);
  sum_dy_xhat = block_sum<kBlock>(sum_dy_xhat, scratch);
  const auto n = static_cast<double>(count);
  const double scale = gamma[c] * r / n;
  for (std::int64_t j = threadIdx.x; j < count; j += kBlock) {
    const std::int64_t i = channel_index(j, c, a.channels, a.spatial);
    const double xhat = (x[i] - m) * r;
    dx[i] = static_cast<float>(scale * (n * dy[i] - sum_dy - xhat * sum_dy_xhat));
  }
  if (threadIdx.x != 0) return;
  dgamma[c] += static_cast<float>(sum_dy_xhat);
  dbeta[c] += static_cast<float>(sum_dy);
}

// Layer norm: one block per row of `features`.
__global__ void __launch_bounds__(kBlock)
    layer_norm_forward_kernel(std::int64_t features, float eps, const float* __restrict__ x,
                              const float* __restrict__ gamma, const float* __restrict__ beta,
                              float* __restrict__ y, float* __restrict__ mean,
                              float* __restrict__ inv_std) {
  __shared__ double scratch[kBlock / 32];
  const std::int64_t row = blockIdx.x;
  const float* in = x + row * features;
  double sum = 0.0;
  for (std::int64_t f = threadIdx.x; f < features; f += kBlock) sum += in[f];
  const double mu = block_sum<kBlock>(sum, scratch) / static_cast<double>(features);
  double squares = 0.0;
  for (std::int64_t f = threadIdx.x; f < features; f += kBlock)
    squares += (in[f] - mu) * (in[f] - mu);
  const double variance = block_sum<kBlock>(squares, scratch) / static_cast<double>(features);
  const auto m = static_cast<float>(mu);
  const auto r = static_cast<float>(1.0 / sqrt(variance + eps));
  for (std::int64_t f = threadIdx.x; f < features; f += kBlock)
    y[row * features + f] = (in[f] - m) * r * gamma[f] + beta[f];
  if (threadIdx.x != 0) return;
  mean[row] = m;
  inv_std[row] = r;
}

__global__ void __launch_bounds__(kBlock)
    layer_norm_backward_kernel(std::int64_t features, const float* __restrict__ x,
                               const float* __restrict__ gamma, const float* __restrict__ mean,
                               const float* __restrict__ inv_std, const float* __restrict__ dy,
                               float* __restrict__ dx) {
  __shared__ double scratch[kBlock / 32];
  const std::int64_t row = blockIdx.x;
  const float m = mean[row], r = inv_std[row];
  double sum_g = 0.0, sum_g_xhat = 0.0;
  for (std::int64_t f = threadIdx.x; f < features; f += kBlock) {
    const std::int64_t i = row * features + f;
    const double xhat = (x[i] - m) * r;
    const double g = dy[i] * gamma[f];
    sum_g += g;
    sum_g_xhat += g * xhat;
  }
  sum_g = block_sum<kBlock>(sum_g, scratch);
  sum_g_xhat = block_sum<kBlock>(sum_g_xhat, scratch);
  const auto n = static_cast<double>(features);
  for (std::int64_t f = threadIdx.x; f < features; f += kBlock) {
    const std::int64_t i = row * features + f;
    const double xhat = (x[i] - m) * r;
    dx[i] = static_cast<float>(r / n * (n * dy[i] * gamma[f] - sum_g - xhat * sum_g_xhat));
  }
}

// dgamma[f] += sum_rows dy xhat, dbeta[f] += sum_rows dy: one thread per feature,
// rows in order (consecutive threads read consecutive features).
__global__ void layer_norm_parameter_grad_kernel(
    std::int64_t features, std::int64_t rows, const float* __restrict__ x,
    const float* __restrict__ mean, const float* __restrict__ inv_std, const float* __restrict__ dy,
    float* __restrict__ dgamma, float* __restrict__ dbeta) {
  for (std::int64_t f = first_index(); f < features; f += grid_stride()) {
    double sum_g = 0.0, sum_b = 0.0;
    for (std::int64_t row = 0; row < rows; ++row) {
      const std::int64_t i = row * features + f;
      const double xhat = (x[i] - mean[row]) * inv_std[row];
      sum_g += dy[i] * xhat;
      sum_b += dy[i];
    }
    dgamma[f] += static_cast<float>(sum_g);
    dbeta[f] += static_cast<float>(sum_b);
  }
}

BatchNormArgs batch_norm_args(const Tensor& x, float eps, float momentum) {
  return {x.dim(0), x.dim(1), x.numel() / (x.dim(0) * x.dim(1)), eps, momentum};
}

}  // namespace

template <>
void BatchNorm2d<DeviceType::CUDA>::forward_train(const Tensor& x, const Tensor& gamma,
                                                  const Tensor& beta, float eps, float momentum,
                                                  Tensor& running_mean, Tensor& running_var,
                                                  Tensor& y, BatchNormState& saved) {
  const BatchNormArgs a = batch_norm_args(x, eps, momentum);
  if (a.channels == 0 || x.numel() == 0) return;
  batch_norm_train_kernel<<<static_cast<unsigned>(a.channels), kBlock, 0,
                            cuda::stream(x.device())>>>(
      a, x.data<float>(), gamma.data<float>(), beta.data<float>(), y.data<float>(),
      saved.mean.data<float>(), saved.inv_std.data<float>(), running_mean.data<float>(),
      running_var.data<float>());
  cuda::check_launch("batch_norm2d_forward_train");
}

template <>
void BatchNorm2d<DeviceType::CUDA>::forward_eval(const Tensor& x, const Tensor& gamma,
                                                 const Tensor& beta, float eps,
                                                 const Tensor& running_mean,
                                                 const Tensor& running_var, Tensor& y) {
  const BatchNormArgs a = batch_norm_args(x, eps, 0.0f);
  launch("batch_norm2d_forward_eval", x.device(), x.numel(), batch_norm_eval_kernel, a.channels,
         a.spatial, eps, x.data<float>(), gamma.data<float>(), beta.data<float>(),
         running_mean.data<float>(), running_var.data<float>(), y.data<float>());
}

template <>
void BatchNorm2d<DeviceType::CUDA>::backward(const Tensor& x, const Tensor& gamma,
                                             const BatchNormState& saved, const Tensor& dy,
                                             Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const BatchNormArgs a = batch_norm_args(x, 0.0f, 0.0f);
  if (a.channels == 0 || x.numel() == 0) return;
  batch_norm_backward_kernel<<<static_cast<unsigned>(a.channels), kBlock, 0,
                               cuda::stream(x.device())>>>(
      a, x.data<float>(), gamma.data<float>(), saved.mean.data<float>(),
      saved.inv_std.data<float>(), dy.data<float>(), dx.data<float>(), dgamma.data<float>(),
      dbeta.data<float>());
  cuda::check_launch("batch_norm2d_backward");
}

template <>
void LayerNorm<DeviceType::CUDA>::forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                          float eps, Tensor& y, Tensor& mean, Tensor& inv_std) {
  const std::int64_t features = gamma.numel();
  if (features == 0 || x.numel() == 0) return;
  const std::int64_t rows = x.numel() / features;
  layer_norm_forward_kernel<<<static_cast<unsigned>(rows), kBlock, 0, cuda::stream(x.device())>>>(
      features, eps, x.data<float>(), gamma.data<float>(), beta.data<float>(), y.data<float>(),
      mean.data<float>(), inv_std.data<float>());
  cuda::check_launch("layer_norm_forward");
}

template <>
void LayerNorm<DeviceType::CUDA>::backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                           const Tensor& inv_std, const Tensor& dy, Tensor& dx,
                                           Tensor& dgamma, Tensor& dbeta) {
  const std::int64_t features = gamma.numel();
  if (features == 0 || x.numel() == 0) return;
  const std::int64_t rows = x.numel() / features;
  layer_norm_backward_kernel<<<static_cast<unsigned>(rows), kBlock, 0, cuda::stream(x.device())>>>(
      features, x.data<float>(), gamma.data<float>(), mean.data<float>(), inv_std.data<float>(),
      dy.data<float>(), dx.data<float>());
  cuda::check_launch("layer_norm_backward");
  launch("layer_norm_parameter_grad", x.device(), features, layer_norm_parameter_grad_kernel, rows,
         x.data<float>(), mean.data<float>(), inv_std.data<float>(), dy.data<float>(),
         dgamma.data<float>(), dbeta.data<float>());
}

}  // namespace kiln::ops
