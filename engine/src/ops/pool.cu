// CUDA twins of pooling: kernels first, launchers after. Each kernel adds in the
// order its CPU twin does (windows row by row; backward gathers an input's
// outputs in ascending output order instead of scattering, so there are no atomics)
// and is built with --fmad=false, so results equal the CPU's bit for bit.
#include "ops/cuda_launch.cuh"
#include "ops/pool.h"

namespace kiln::ops {
namespace {

using cuda_detail::first_index;
using cuda_detail::grid_stride;
using cuda_detail::launch;

// The geometry as the kernels read it (no std::int64_t methods on the device).
struct PoolShape {
  std::int64_t height, width, out_height, out_width, kernel, stride, padding;
};

PoolShape shape_of(const Pool2dGeometry& g) {
  return {g.height, g.width, g.out_height(), g.out_width(), g.kernel, g.stride, g.padding};
}

// The window of output (oy, ox) clipped to the input: [y0, y1) x [x0, x1).
struct Window {
  std::int64_t y0, y1, x0, x1;
};
__device__ Window window_of(const PoolShape& s, std::int64_t oy, std::int64_t ox) {
  const std::int64_t ys = oy * s.stride - s.padding, xs = ox * s.stride - s.padding;
  return {max(ys, std::int64_t{0}), min(ys + s.kernel, s.height), max(xs, std::int64_t{0}),
          min(xs + s.kernel, s.width)};
}

// The outputs whose windows cover input row (or column) `i`: [first, last].
struct Span {
  std::int64_t first, last;
};
__device__ Span covering(std::int64_t i, std::int64_t kernel, std::int64_t stride,
                         std::int64_t padding, std::int64_t outputs) {
  // o stride - padding <= i < o stride - padding + kernel
  const std::int64_t low = i + padding - kernel + 1;
  const std::int64_t first = low <= 0 ? 0 : (low + stride - 1) / stride;
  return {first, min((i + padding) / stride, outputs - 1)};
}

__global__ void max_pool_forward_kernel(std::int64_t n, PoolShape s, const float* __restrict__ x,
                                        float* __restrict__ y, std::int32_t* __restrict__ argmax) {
  const std::int64_t out_plane = s.out_height * s.out_width;
  for (std::int64_t o = first_index(); o < n; o += grid_stride()) {
    const std::int64_t plane = o / out_plane;
    const Window w = window_of(s, (o % out_plane) / s.out_width, o % s.out_width);
    const float* base = x + plane * s.height * s.width;
    float best = -INFINITY;
    std::int64_t best_index = w.y0 * s.width + w.x0;
    for (std::int64_t iy = w.y0; iy < w.y1; ++iy)
      for (std::int64_t ix = w.x0; ix < w.x1; ++ix) {
        const float v = base[iy * s.width + ix];
        if (v > best || isnan(v)) {  // a NaN wins, as on the CPU
          best = v;
          best_index = iy * s.width + ix;
        }
      }
    y[o] = best;
    argmax[o] = static_cast<std::int32_t>(best_index);
  }
}

__global__ void max_pool_backward_kernel(std::int64_t n, PoolShape s, const float* __restrict__ dy,
                                         const std::int32_t* __restrict__ argmax,
                                         float* __restrict__ dx) {
  const std::int64_t in_plane = s.height * s.width, out_plane = s.out_height * s.out_width;
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const std::int64_t plane = i / in_plane, at = i % in_plane;
    const Span rows = covering(at / s.width, s.kernel, s.stride, s.padding, s.out_height);
    const Span columns = covering(at % s.width, s.kernel, s.stride, s.padding, s.out_width);
    float sum = 0.0f;
    for (std::int64_t oy = rows.first; oy <= rows.last; ++oy)
      for (std::int64_t ox = columns.first; ox <= columns.last; ++ox) {
        const std::int64_t o = plane * out_plane + oy * s.out_width + ox;
        if (argmax[o] == at) sum += dy[o];
      }
    dx[i] = sum;
  }
}

__global__ void avg_pool_forward_kernel(std::int64_t n, PoolShape s, float scale,
                                        const float* __restrict__ x, float* __restrict__ y) {
  const std::int64_t out_plane = s.out_height * s.out_width;
  for (std::int64_t o = first_index(); o < n; o += grid_stride()) {
    const std::int64_t plane = o / out_plane;
    const Window w = window_of(s, (o % out_plane) / s.out_width, o % s.out_width);
    const float* base = x + plane * s.height * s.width;
    float sum = 0.0f;
    for (std::int64_t iy = w.y0; iy < w.y1; ++iy)
      for (std::int64_t ix = w.x0; ix < w.x1; ++ix) sum += base[iy * s.width + ix];
    y[o] = sum * scale;
  }
}

__global__ void avg_pool_backward_kernel(std::int64_t n, PoolShape s, float scale,
                                         const float* __restrict__ dy, float* __restrict__ dx) {
  const std::int64_t in_plane = s.height * s.width, out_plane = s.out_height * s.out_width;
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const std::int64_t plane = i / in_plane, at = i % in_plane;
    const Span rows = covering(at / s.width, s.kernel, s.stride, s.padding, s.out_height);
    const Span columns = covering(at % s.width, s.kernel, s.stride, s.padding, s.out_width);
    float sum = 0.0f;
    for (std::int64_t oy = rows.first; oy <= rows.last; ++oy)
      for (std::int64_t ox = columns.first; ox <= columns.last; ++ox)
        sum += dy[plane * out_plane + oy * s.out_width + ox] * scale;
    dx[i] = sum;
  }
}

// One thread per plane, summing in the CPU's order (global pooling sees small
// planes: 7x7 in a ResNet tail).
__global__ void global_avg_pool_forward_kernel(std::int64_t planes, std::int64_t size,
                                               const float* __restrict__ x, float* __restrict__ y) {
  for (std::int64_t p = first_index(); p < planes; p += grid_stride()) {
    float sum = 0.0f;
    for (std::int64_t i = 0; i < size; ++i) sum += x[p * size + i];
    y[p] = sum / static_cast<float>(size);
  }
}

__global__ void global_avg_pool_backward_kernel(std::int64_t n, std::int64_t size,
                                                const float* __restrict__ dy,
                                                float* __restrict__ dx) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride())
    dx[i] = dy[i / size] / static_cast<float>(size);
}

float window_scale(const Pool2dGeometry& g) {
  return 1.0f / static_cast<float>(g.kernel * g.kernel);
}

}  // namespace

template <>
void MaxPool2d<DeviceType::CUDA>::forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y,
                                          Tensor& argmax) {
  launch("max_pool2d_forward", x.device(), y.numel(), max_pool_forward_kernel, shape_of(g),
         x.data<float>(), y.data<float>(), argmax.data<std::int32_t>());
}

template <>
void MaxPool2d<DeviceType::CUDA>::backward(const Pool2dGeometry& g, const Tensor& dy,
                                           const Tensor& argmax, Tensor& dx) {
  launch("max_pool2d_backward", dy.device(), dx.numel(), max_pool_backward_kernel, shape_of(g),
         dy.data<float>(), argmax.data<std::int32_t>(), dx.data<float>());
}

template <>
void AvgPool2d<DeviceType::CUDA>::forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) {
  launch("avg_pool2d_forward", x.device(), y.numel(), avg_pool_forward_kernel, shape_of(g),
         window_scale(g), x.data<float>(), y.data<float>());
}

template <>
void AvgPool2d<DeviceType::CUDA>::backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx) {
  launch("avg_pool2d_backward", dy.device(), dx.numel(), avg_pool_backward_kernel, shape_of(g),
         window_scale(g), dy.data<float>(), dx.data<float>());
}

template <>
void GlobalAvgPool<DeviceType::CUDA>::forward(const Tensor& x, Tensor& y) {
  launch("global_avg_pool_forward", x.device(), x.dim(0) * x.dim(1), global_avg_pool_forward_kernel,
         x.dim(2) * x.dim(3), x.data<float>(), y.data<float>());
}

template <>
void GlobalAvgPool<DeviceType::CUDA>::backward(const Tensor& dy, Tensor& dx) {
  launch("global_avg_pool_backward", dy.device(), dx.numel(), global_avg_pool_backward_kernel,
         dx.dim(2) * dx.dim(3), dy.data<float>(), dx.data<float>());
}

}  // namespace kiln::ops
