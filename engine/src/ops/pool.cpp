#include "ops/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln::ops {
namespace {

// Calls visit(plane, oy, ox, out_index) for every output element; planes are
// (n, c) pairs laid out contiguously in NCHW. Planes are split over the CPU threads:
// every output, and in backward every input gradient, belongs to one plane, so the
// result does not depend on the thread count.
template <class Visit>
void for_each_output(const Pool2dGeometry& g, Visit&& visit) {
  const std::int64_t planes = g.batch * g.channels;
  const std::int64_t oh = g.out_height(), ow = g.out_width();
#pragma omp parallel for schedule(static)
  for (std::int64_t plane = 0; plane < planes; ++plane)
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox) visit(plane, oy, ox, (plane * oh + oy) * ow + ox);
}

// The window of output (oy, ox), clipped to the input: [y0, y1) x [x0, x1).
struct Window {
  std::int64_t y0, y1, x0, x1;
};
Window window(const Pool2dGeometry& g, std::int64_t oy, std::int64_t ox) {
  const std::int64_t ys = oy * g.stride - g.padding, xs = ox * g.stride - g.padding;
  return {std::max<std::int64_t>(ys, 0), std::min(ys + g.kernel, g.height),
          std::max<std::int64_t>(xs, 0), std::min(xs + g.kernel, g.width)};
}

// The 2x2, stride 2, unpadded pooling of most CNNs: every window whole and its own,
// so one pass over pairs of rows with no window arithmetic. Same comparisons in the
// same order as the general loop: the same maxima and argmax, bit for bit.
bool tiles_by_two(const Pool2dGeometry& g) {
  return g.kernel == 2 && g.stride == 2 && g.padding == 0;
}

// Takes v at index i when it beats best, or is NaN: a NaN wins, as in torch, so that
// it propagates to the loss. Ties keep the first.
inline void take_if_larger(float v, std::int32_t i, float& best, std::int32_t& where) {
  const bool larger = v > best || std::isnan(v);
  best = larger ? v : best;
  where = larger ? i : where;
}

void max_pool_two_by_two(const Pool2dGeometry& g, const float* in, float* out,
                         std::int32_t* where) {
  const std::int64_t planes = g.batch * g.channels, oh = g.out_height(), ow = g.out_width();
  const std::int64_t width = g.width, plane_size = g.height * g.width;
#pragma omp parallel for schedule(static)
  for (std::int64_t plane = 0; plane < planes; ++plane)
    for (std::int64_t oy = 0; oy < oh; ++oy) {
      const float* row0 = in + plane * plane_size + 2 * oy * width;
      const float* row1 = row0 + width;
      const std::int64_t o = (plane * oh + oy) * ow;
      const auto top = static_cast<std::int32_t>(2 * oy * width);
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        const auto left = static_cast<std::int32_t>(top + 2 * ox);
        float best = row0[2 * ox];
        std::int32_t index = left;
        take_if_larger(row0[2 * ox + 1], left + 1, best, index);
        take_if_larger(row1[2 * ox], static_cast<std::int32_t>(left + width), best, index);
        take_if_larger(row1[2 * ox + 1], static_cast<std::int32_t>(left + width + 1), best, index);
        out[o + ox] = best;
        where[o + ox] = index;
      }
    }
}

}  // namespace

template <>
void MaxPool2d<DeviceType::CPU>::forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y,
                                         Tensor& argmax) {
  const float* in = x.data<float>();
  float* out = y.data<float>();
  std::int32_t* where = argmax.data<std::int32_t>();
  if (tiles_by_two(g)) return max_pool_two_by_two(g, in, out, where);
  const std::int64_t plane_size = g.height * g.width;
  for_each_output(g, [&](std::int64_t plane, std::int64_t oy, std::int64_t ox, std::int64_t o) {
    const Window w = window(g, oy, ox);
    const float* base = in + plane * plane_size;
    float best = -std::numeric_limits<float>::infinity();
    auto best_index = static_cast<std::int32_t>(w.y0 * g.width + w.x0);
    for (std::int64_t iy = w.y0; iy < w.y1; ++iy)
      for (std::int64_t ix = w.x0; ix < w.x1; ++ix)
        take_if_larger(base[iy * g.width + ix], static_cast<std::int32_t>(iy * g.width + ix), best,
                       best_index);
    out[o] = best;
    where[o] = best_index;
  });
}

template <>
void MaxPool2d<DeviceType::CPU>::backward(const Pool2dGeometry& g, const Tensor& dy,
                                          const Tensor& argmax, Tensor& dx) {
  const float* grad = dy.data<float>();
  const std::int32_t* where = argmax.data<std::int32_t>();
  float* result = dx.data<float>();
  const std::int64_t planes = g.batch * g.channels, outputs = g.out_height() * g.out_width();
  const std::int64_t plane_size = g.height * g.width;
  // Each plane cleared and filled by the thread that owns it, while it is in cache.
#pragma omp parallel for schedule(static)
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    float* plane_dx = result + plane * plane_size;
    std::fill(plane_dx, plane_dx + plane_size, 0.0f);
    for (std::int64_t o = plane * outputs; o < (plane + 1) * outputs; ++o)
      plane_dx[where[o]] += grad[o];
  }
}

template <>
void AvgPool2d<DeviceType::CPU>::forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) {
  const float* in = x.data<float>();
  float* out = y.data<float>();
  const float scale = 1.0f / static_cast<float>(g.kernel * g.kernel);
  const std::int64_t plane_size = g.height * g.width;
  for_each_output(g, [&](std::int64_t plane, std::int64_t oy, std::int64_t ox, std::int64_t o) {
    const Window w = window(g, oy, ox);
    const float* base = in + plane * plane_size;
    float sum = 0.0f;
    for (std::int64_t iy = w.y0; iy < w.y1; ++iy)
      for (std::int64_t ix = w.x0; ix < w.x1; ++ix) sum += base[iy * g.width + ix];
    out[o] = sum * scale;
  });
}

template <>
void AvgPool2d<DeviceType::CPU>::backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx) {
  const float* grad = dy.data<float>();
  float* result = dx.data<float>();
  dx.zero();
  const float scale = 1.0f / static_cast<float>(g.kernel * g.kernel);
  const std::int64_t plane_size = g.height * g.width;
  for_each_output(g, [&](std::int64_t plane, std::int64_t oy, std::int64_t ox, std::int64_t o) {
    const Window w = window(g, oy, ox);
    float* base = result + plane * plane_size;
    for (std::int64_t iy = w.y0; iy < w.y1; ++iy)
      for (std::int64_t ix = w.x0; ix < w.x1; ++ix) base[iy * g.width + ix] += grad[o] * scale;
  });
}

template <>
void GlobalAvgPool<DeviceType::CPU>::forward(const Tensor& x, Tensor& y) {
  const std::int64_t planes = x.dim(0) * x.dim(1), size = x.dim(2) * x.dim(3);
  const float* in = x.data<float>();
  float* out = y.data<float>();
#pragma omp parallel for schedule(static)
  for (std::int64_t p = 0; p < planes; ++p) {
    float sum = 0.0f;
    for (std::int64_t i = 0; i < size; ++i) sum += in[p * size + i];
    out[p] = sum / static_cast<float>(size);
  }
}

template <>
void GlobalAvgPool<DeviceType::CPU>::backward(const Tensor& dy, Tensor& dx) {
  const std::int64_t planes = dx.dim(0) * dx.dim(1), size = dx.dim(2) * dx.dim(3);
  const float* grad = dy.data<float>();
  float* result = dx.data<float>();
#pragma omp parallel for schedule(static)
  for (std::int64_t p = 0; p < planes; ++p)
    std::fill(result + p * size, result + (p + 1) * size, grad[p] / static_cast<float>(size));
}

void max_pool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y, Tensor& argmax) {
  check_shape("max_pool2d", "input", x, g.input_shape());
  check_shape("max_pool2d", "output", y, g.output_shape());
  dispatch<MaxPool2d>(x.device(), "max_pool2d", [&](auto op) { op.forward(g, x, y, argmax); });
}
void max_pool2d_backward(const Pool2dGeometry& g, const Tensor& dy, const Tensor& argmax,
                         Tensor& dx) {
  check_shape("max_pool2d_backward", "input gradient", dx, g.input_shape());
  dispatch<MaxPool2d>(dy.device(), "max_pool2d", [&](auto op) { op.backward(g, dy, argmax, dx); });
}
void avg_pool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y) {
  check_shape("avg_pool2d", "input", x, g.input_shape());
  check_shape("avg_pool2d", "output", y, g.output_shape());
  dispatch<AvgPool2d>(x.device(), "avg_pool2d", [&](auto op) { op.forward(g, x, y); });
}
void avg_pool2d_backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx) {
  check_shape("avg_pool2d_backward", "input gradient", dx, g.input_shape());
  dispatch<AvgPool2d>(dy.device(), "avg_pool2d", [&](auto op) { op.backward(g, dy, dx); });
}
void global_avg_pool_forward(const Tensor& x, Tensor& y) {
  check_shape("global_avg_pool", "output", y, {x.dim(0), x.dim(1)});
  dispatch<GlobalAvgPool>(x.device(), "global_avg_pool", [&](auto op) { op.forward(x, y); });
}
void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  check_shape("global_avg_pool_backward", "output gradient", dy, {dx.dim(0), dx.dim(1)});
  dispatch<GlobalAvgPool>(dy.device(), "global_avg_pool", [&](auto op) { op.backward(dy, dx); });
}

}  // namespace kiln::ops
