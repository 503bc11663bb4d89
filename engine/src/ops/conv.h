// 2-D convolution, NCHW activations and OIHW weights (torch.nn.Conv2d's layout),
// square kernels, one stride and one zero padding for both axes.
#pragma once

#include "ops/dispatch.h"
#include "ops/precision.h"

namespace kiln::ops {

struct Conv2dGeometry {
  std::int64_t batch = 0, in_channels = 0, height = 0, width = 0;
  std::int64_t out_channels = 0, kernel = 1, stride = 1, padding = 0;

  std::int64_t out_height() const { return (height + 2 * padding - kernel) / stride + 1; }
  std::int64_t out_width() const { return (width + 2 * padding - kernel) / stride + 1; }
  Shape input_shape() const { return {batch, in_channels, height, width}; }
  Shape output_shape() const { return {batch, out_channels, out_height(), out_width()}; }
  Shape weight_shape() const { return {out_channels, in_channels, kernel, kernel}; }

  // Square images and kernels, as the tests and benchmarks build them.
  static Conv2dGeometry square(std::int64_t batch, std::int64_t in, std::int64_t size,
                               std::int64_t out, std::int64_t kernel, std::int64_t stride,
                               std::int64_t padding) {
    return {.batch = batch,
            .in_channels = in,
            .height = size,
            .width = size,
            .out_channels = out,
            .kernel = kernel,
            .stride = stride,
            .padding = padding};
  }
};

template <DeviceType D>
struct Conv2d {
  // y = conv(x, w) + bias (bias may be undefined).
  static void forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                      Tensor& y, MathPrecision precision);
  // dx (if defined) = conv_transpose(dy, w); dw += correlation(x, dy); db += sum dy
  // (db if defined). Gradients accumulate so that micro-batches add up.
  static void backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                       Tensor& dx, Tensor& dw, Tensor& db, MathPrecision precision);
};

KILN_OP_HAS_CUDA(Conv2d)

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                    Tensor& y, MathPrecision precision = MathPrecision::F32);
void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                     Tensor& dx, Tensor& dw, Tensor& db,
                     MathPrecision precision = MathPrecision::F32);

}  // namespace kiln::ops
