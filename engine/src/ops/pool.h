// Pooling over NCHW tensors: max and average windows, and the global average.
#pragma once

#include "ops/dispatch.h"

namespace kiln::ops {

struct Pool2dGeometry {
  std::int64_t batch = 0, channels = 0, height = 0, width = 0;
  std::int64_t kernel = 2, stride = 2, padding = 0;

  std::int64_t out_height() const { return (height + 2 * padding - kernel) / stride + 1; }
  std::int64_t out_width() const { return (width + 2 * padding - kernel) / stride + 1; }
  Shape input_shape() const { return {batch, channels, height, width}; }
  Shape output_shape() const { return {batch, channels, out_height(), out_width()}; }
};

template <DeviceType D>
struct MaxPool2d {
  // argmax[i] = flat index within the input plane of the maximum (ties: first).
  static void forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y, Tensor& argmax);
  static void backward(const Pool2dGeometry& g, const Tensor& dy, const Tensor& argmax, Tensor& dx);
};

// Average over the window; padded positions count (torch's count_include_pad=True).
template <DeviceType D>
struct AvgPool2d {
  static void forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y);
  static void backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx);
};

// [N, C, H, W] -> [N, C]: the mean of each plane.
template <DeviceType D>
struct GlobalAvgPool {
  static void forward(const Tensor& x, Tensor& y);
  static void backward(const Tensor& dy, Tensor& dx);
};

KILN_OP_HAS_CUDA(MaxPool2d)
KILN_OP_HAS_CUDA(AvgPool2d)
KILN_OP_HAS_CUDA(GlobalAvgPool)

void max_pool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y, Tensor& argmax);
void max_pool2d_backward(const Pool2dGeometry& g, const Tensor& dy, const Tensor& argmax,
                         Tensor& dx);
void avg_pool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y);
void avg_pool2d_backward(const Pool2dGeometry& g, const Tensor& dy, Tensor& dx);
void global_avg_pool_forward(const Tensor& x, Tensor& y);
void global_avg_pool_backward(const Tensor& dy, Tensor& dx);

}  // namespace kiln::ops
