// Elementwise ops: activations, dropout, residual sums.
#pragma once

#include "ops/dispatch.h"

#include <cstdint>

namespace kiln::ops {

template <DeviceType D>
struct Relu {
  static void forward(const Tensor& x, Tensor& y);
  // dx = dy where y > 0 (from the saved output: ReLU's output marks its input's sign).
  static void backward(const Tensor& y, const Tensor& dy, Tensor& dx);
};

// GELU, exact form (erf), as torch.nn.GELU(approximate="none").
template <DeviceType D>
struct Gelu {
  static void forward(const Tensor& x, Tensor& y);
  static void backward(const Tensor& x, const Tensor& dy, Tensor& dx);
};

// Where a dropout mask's random numbers come from: element i of a layer's output at
// a training step uses word i % 4 of Philox-4x32-10 block
//   key = {seed lo, seed hi}, counter = {i / 4, layer, RngStream::Dropout, step}
// so masks are reproducible on any device and differ between layers and steps.
struct DropoutDraw {
  std::uint64_t seed = 0;
  std::uint32_t layer = 0;
  std::uint32_t step = 0;
};

template <DeviceType D>
struct Dropout {
  // Keeps an element with probability 1 - p, scaled by 1 / (1 - p); mask[i] = kept.
  static void forward(const Tensor& x, float p, const DropoutDraw& draw, Tensor& y, Tensor& mask);
  static void backward(const Tensor& dy, const Tensor& mask, float p, Tensor& dx);
};

// y = a + b (same shapes); y may alias a or b.
template <DeviceType D>
struct Add {
  static void run(const Tensor& a, const Tensor& b, Tensor& y);
};

KILN_OP_HAS_CUDA(Relu)
KILN_OP_HAS_CUDA(Gelu)
KILN_OP_HAS_CUDA(Dropout)
KILN_OP_HAS_CUDA(Add)

void relu_forward(const Tensor& x, Tensor& y);
void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx);
void gelu_forward(const Tensor& x, Tensor& y);
void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx);
void dropout_forward(const Tensor& x, float p, const DropoutDraw& draw, Tensor& y, Tensor& mask);
void dropout_backward(const Tensor& dy, const Tensor& mask, float p, Tensor& dx);
void add(const Tensor& a, const Tensor& b, Tensor& y);

}  // namespace kiln::ops
