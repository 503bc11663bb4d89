// The activations' arithmetic, written once for the CPU loop and the CUDA kernel
// (ops/elementwise.h runs a functor over a tensor on either device). A functor has
//   forward(x)            the activation of one element;
//   backward(saved, dy)   dx from dy and the saved element: the input, or the
//                         output where kSavesOutput (ReLU's output marks its input's
//                         sign, so it need not keep the input).
// Adding an activation: a functor here, its name in KILN_ACTIVATIONS (the CUDA
// kernels are instantiated from that list), and a layer type in nn/layers_activation.cpp.
//
// erff and expf are the C library's on the host and CUDA's on the device (within
// 2 ulp of glibc's): GELU and SiLU agree to about 1e-6 relative, the others bit
// for bit.
#pragma once

#include <math.h>  // erff, expf: the same names in host and device code

#include "kernels/host_device.h"

namespace kiln::ops {

struct Relu {
  static constexpr bool kSavesOutput = true;
  // NaN passes through (NaN < 0 is false), as torch.relu does: a NaN must reach the
  // loss for the trainer's guard to see it.
  KILN_HOST_DEVICE float forward(float x) const { return x < 0.0f ? 0.0f : x; }
  KILN_HOST_DEVICE float backward(float y, float dy) const { return y > 0.0f ? dy : 0.0f; }
};

// Exact GELU (erf), as torch.nn.GELU(approximate="none"): 0.5 x (1 + erf(x / sqrt 2)).
struct Gelu {
  static constexpr bool kSavesOutput = false;
  static constexpr float kInvSqrt2 = 0.70710678118654752f;
  static constexpr float kInvSqrt2Pi = 0.39894228040143268f;
  KILN_HOST_DEVICE float forward(float x) const { return 0.5f * x * (1.0f + erff(x * kInvSqrt2)); }
  // d/dx x Phi(x) = Phi(x) + x phi(x).
  KILN_HOST_DEVICE float backward(float x, float dy) const {
    const float cdf = 0.5f * (1.0f + erff(x * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * expf(-0.5f * x * x);
    return dy * (cdf + x * pdf);
  }
};

// SiLU (swish), as torch.nn.SiLU: x sigmoid(x) = x / (1 + exp(-x)).
struct Silu {
  static constexpr bool kSavesOutput = false;
  KILN_HOST_DEVICE float forward(float x) const { return x / (1.0f + expf(-x)); }
  // d/dx x s(x) = s(x) (1 + x (1 - s(x))).
  KILN_HOST_DEVICE float backward(float x, float dy) const {
    const float s = 1.0f / (1.0f + expf(-x));
    return dy * (s * (1.0f + x * (1.0f - s)));
  }
};

// LeakyReLU, as torch.nn.LeakyReLU: x for x >= 0, negative_slope * x below (NaN
// passes through).
struct LeakyRelu {
  static constexpr bool kSavesOutput = false;
  float negative_slope = 0.01f;
  KILN_HOST_DEVICE float forward(float x) const { return x < 0.0f ? x * negative_slope : x; }
  KILN_HOST_DEVICE float backward(float x, float dy) const {
    return x > 0.0f ? dy : dy * negative_slope;
  }
};

// Every activation functor; activation.cu instantiates the CUDA kernels for each.
#define KILN_ACTIVATIONS(X) X(Relu) X(Gelu) X(Silu) X(LeakyRelu)

}  // namespace kiln::ops
