// CUDA twins of the elementwise ops: kernels first, launchers after. The arithmetic
// is the CPU twin's own (the functors of ops/activation_math.h, dropout_block in
// ops/activation.h), built with --fmad=false, so every kernel rounds as its CPU twin
// does; only erff/expf are CUDA's (within 2 ulp of glibc's).
#include "ops/activation.h"
#include "ops/cuda_launch.cuh"
#include "ops/step_kernels.h"

namespace kiln::ops {
namespace {

using cuda_detail::first_index;
using cuda_detail::grid_stride;
using cuda_detail::launch;

template <class F>
__global__ void elementwise_forward_kernel(std::int64_t n, F f, const float* __restrict__ x,
                                           float* __restrict__ y) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) y[i] = f.forward(x[i]);
}

template <class F>
__global__ void elementwise_backward_kernel(std::int64_t n, F f, const float* __restrict__ saved,
                                            const float* __restrict__ dy, float* __restrict__ dx) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride())
    dx[i] = f.backward(saved[i], dy[i]);
}

// One thread per Philox block: four elements from one call.
__global__ void dropout_forward_kernel(std::int64_t blocks, std::int64_t n,
                                       const float* __restrict__ x, float p, float scale,
                                       DropoutDraw draw, float* __restrict__ y,
                                       std::uint8_t* __restrict__ mask) {
  for (std::int64_t block = first_index(); block < blocks; block += grid_stride())
    dropout_block(block, n, x, p, scale, draw, y, mask);
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

template <class F>
void Elementwise<DeviceType::CUDA>::forward(const F& f, const Tensor& x, Tensor& y) {
  launch("elementwise_forward", x.device(), x.numel(), elementwise_forward_kernel<F>, f,
         x.data<float>(), y.data<float>());
}

template <class F>
void Elementwise<DeviceType::CUDA>::backward(const F& f, const Tensor& saved, const Tensor& dy,
                                             Tensor& dx) {
  launch("elementwise_backward", saved.device(), saved.numel(), elementwise_backward_kernel<F>, f,
         saved.data<float>(), dy.data<float>(), dx.data<float>());
}

#define KILN_INSTANTIATE_ELEMENTWISE(F)                                                            \
  template void Elementwise<DeviceType::CUDA>::forward<F>(const F&, const Tensor&, Tensor&);       \
  template void Elementwise<DeviceType::CUDA>::backward<F>(const F&, const Tensor&, const Tensor&, \
                                                           Tensor&);
KILN_ACTIVATIONS(KILN_INSTANTIATE_ELEMENTWISE)
#undef KILN_INSTANTIATE_ELEMENTWISE

template <>
void Dropout<DeviceType::CUDA>::forward(const Tensor& x, float p, const DropoutDraw& draw,
                                        Tensor& y, Tensor& mask) {
  const std::int64_t n = x.numel();
  launch("dropout_forward", x.device(), (n + 3) / 4, dropout_forward_kernel, n, x.data<float>(), p,
         1.0f / (1.0f - p), draw, y.data<float>(), mask.data<std::uint8_t>());
  if (n > 0) StepKernelLog::launched(dropout_draw_parameter(), cuda::stream(x.device()));
}

StepParameter dropout_draw_parameter() {
  return step_parameter<DropoutDraw>(dropout_forward_kernel, "draw");
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
