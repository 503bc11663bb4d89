// Elementwise ops: dropout and residual sums; the activations are functors run by
// ops/elementwise.h (formulas in ops/activation_math.h).
#pragma once

#include <kiln/nn/rng.h>

#include "kernels/philox.cuh"
#include "ops/dispatch.h"
#include "ops/elementwise.h"

#include <cstdint>

namespace kiln::ops {

// Where a dropout mask's random numbers come from: element i of a layer's output at
// a training step uses word i % 4 of Philox-4x32-10 block
//   key = {seed lo, seed hi}, counter = {i / 4, layer, RngStream::Dropout, step}
// so masks are reproducible on any device and differ between layers and steps.
struct DropoutDraw {
  std::uint64_t seed = 0;
  std::uint32_t layer = 0;
  std::uint32_t step = 0;
};

// Dropout of the (up to) four elements of Philox block `block`: the one formula the
// CPU loop and the CUDA kernel (one thread per block) share.
KILN_HOST_DEVICE inline void dropout_block(std::int64_t block, std::int64_t n, const float* x,
                                           float p, float scale, const DropoutDraw& draw, float* y,
                                           std::uint8_t* mask) {
  const kernels::Philox4 words = kernels::philox4x32_10(
      {{static_cast<std::uint32_t>(block), draw.layer,
        static_cast<std::uint32_t>(nn::RngStream::Dropout), draw.step}},
      static_cast<std::uint32_t>(draw.seed), static_cast<std::uint32_t>(draw.seed >> 32));
  for (int lane = 0; lane < 4 && block * 4 + lane < n; ++lane) {
    const std::int64_t i = block * 4 + lane;
    const bool kept = kernels::uniform01(words.word[lane]) >= p;
    mask[i] = kept;
    y[i] = kept ? x[i] * scale : 0.0f;
  }
}

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

KILN_OP_HAS_CUDA(Dropout)
KILN_OP_HAS_CUDA(Add)

void dropout_forward(const Tensor& x, float p, const DropoutDraw& draw, Tensor& y, Tensor& mask);
void dropout_backward(const Tensor& dy, const Tensor& mask, float p, Tensor& dx);
void add(const Tensor& a, const Tensor& b, Tensor& y);

}  // namespace kiln::ops
