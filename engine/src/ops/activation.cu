// CUDA twins of the elementwise ops: kernels first, launchers after. Built with
// --fmad=false, so every kernel rounds as its CPU twin does; GELU's erff/expf are
// CUDA's (within 2 ulp of glibc's), the rest give the CPU's bits. Dropout draws
// its numbers from kernels/philox.cuh at the addresses the CPU twin uses
// (ops/activation.h), so the masks are equal.
#include <kiln/nn/rng.h>

#include "kernels/philox.cuh"
#include "ops/activation.h"
#include "ops/cuda_launch.cuh"
#include "ops/step_kernels.h"

namespace kiln::ops {
namespace {

using cuda_detail::first_index;
using cuda_detail::grid_stride;
using cuda_detail::launch;

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

__global__ void relu_forward_kernel(std::int64_t n, const float* __restrict__ x,
                                    float* __restrict__ y) {
  // NaN passes through (NaN < 0 is false), as on the CPU.
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

__global__ void relu_backward_kernel(std::int64_t n, const float* __restrict__ y,
                                     const float* __restrict__ dy, float* __restrict__ dx) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride())
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__global__ void gelu_forward_kernel(std::int64_t n, const float* __restrict__ x,
                                    float* __restrict__ y) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride())
    y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * kInvSqrt2));
}

__global__ void gelu_backward_kernel(std::int64_t n, const float* __restrict__ x,
                                     const float* __restrict__ dy, float* __restrict__ dx) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const float v = x[i];
    const float cdf = 0.5f * (1.0f + erff(v * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * expf(-0.5f * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

// One thread per Philox block: four elements from one call.
__global__ void dropout_forward_kernel(std::int64_t blocks, std::int64_t n,
                                       const float* __restrict__ x, float p, float scale,
                                       DropoutDraw draw, float* __restrict__ y,
                                       std::uint8_t* __restrict__ mask) {
  const auto stream = static_cast<std::uint32_t>(nn::RngStream::Dropout);
  const auto key0 = static_cast<std::uint32_t>(draw.seed);
  const auto key1 = static_cast<std::uint32_t>(draw.seed >> 32);
  for (std::int64_t block = first_index(); block < blocks; block += grid_stride()) {
    const kernels::Philox4 words = kernels::philox4x32_10(
        {{static_cast<std::uint32_t>(block), draw.layer, stream, draw.step}}, key0, key1);
    for (int lane = 0; lane < 4 && block * 4 + lane < n; ++lane) {
      const std::int64_t i = block * 4 + lane;
      const bool kept = kernels::uniform01(words.word[lane]) >= p;
      mask[i] = kept;
      y[i] = kept ? x[i] * scale : 0.0f;
    }
  }
}

__global__ void dropout_backward_kernel(std::int64_t n, const float* __restrict__ dy,
                                        const std::uint8_t* __restrict__ mask, float scale,
                                        float* __restrict__ dx) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride())
    dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}

__global__ void add_kernel(std::int64_t n, const float* a, const float* b, float* y) {
  // No __restrict__: y may alias a or b.
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) y[i] = a[i] + b[i];
}

}  // namespace

template <>
void Relu<DeviceType::CUDA>::forward(const Tensor& x, Tensor& y) {
  launch("relu_forward", x.device(), x.numel(), relu_forward_kernel, x.data<float>(),
         y.data<float>());
}

template <>
void Relu<DeviceType::CUDA>::backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  launch("relu_backward", y.device(), y.numel(), relu_backward_kernel, y.data<float>(),
         dy.data<float>(), dx.data<float>());
}

template <>
void Gelu<DeviceType::CUDA>::forward(const Tensor& x, Tensor& y) {
  launch("gelu_forward", x.device(), x.numel(), gelu_forward_kernel, x.data<float>(),
         y.data<float>());
}

template <>
void Gelu<DeviceType::CUDA>::backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  launch("gelu_backward", x.device(), x.numel(), gelu_backward_kernel, x.data<float>(),
         dy.data<float>(), dx.data<float>());
}

template <>
void Dropout<DeviceType::CUDA>::forward(const Tensor& x, float p, const DropoutDraw& draw,
                                        Tensor& y, Tensor& mask) {
  const std::int64_t n = x.numel();
  launch("dropout_forward", x.device(), (n + 3) / 4, dropout_forward_kernel, n, x.data<float>(), p,
         1.0f / (1.0f - p), draw, y.data<float>(), mask.data<std::uint8_t>());
  if (n > 0) {
    const DropoutKernel kernel = dropout_draw_kernel();
    StepKernelLog::launched(kernel.kernel, cuda::stream(x.device()), kernel.draw_index,
                            kernel.count, sizeof(DropoutDraw));
  }
}

DropoutKernel dropout_draw_kernel() {
  // (blocks, n, x, p, scale, draw, y, mask): the draw carries the step.
  return {reinterpret_cast<const void*>(dropout_forward_kernel), 5, 8};
}

template <>
void Dropout<DeviceType::CUDA>::backward(const Tensor& dy, const Tensor& mask, float p,
                                         Tensor& dx) {
  launch("dropout_backward", dy.device(), dy.numel(), dropout_backward_kernel, dy.data<float>(),
         mask.data<std::uint8_t>(), 1.0f / (1.0f - p), dx.data<float>());
}

template <>
void Add<DeviceType::CUDA>::run(const Tensor& a, const Tensor& b, Tensor& y) {
  launch("add", a.device(), a.numel(), add_kernel, a.data<float>(), b.data<float>(),
         y.data<float>());
}

}  // namespace kiln::ops
