// Private to the optimizer ops: the clipping factor and the flush of subnormal
// state, one __host__ __device__ definition each for both twins (optim.cpp and
// optim.cu).
#pragma once

#include <cmath>

#include "kernels/philox.cuh"  // KILN_HOST_DEVICE

namespace kiln::ops {

// torch.nn.utils.clip_grad_norm_'s factor for a total of squares, in double as
// Python computes it; clipping scales only when it is below 1.
KILN_HOST_DEVICE inline double clip_coefficient(float sum_squares, float max_norm) {
  return static_cast<double>(max_norm) / (sqrt(static_cast<double>(sum_squares)) + 1e-6);
}

// The smallest normal float (FLT_MIN), spelled out for device code.
constexpr float kSmallestNormal = 1.17549435e-38f;

// Optimizer state that decays toward zero (AdamW's moments, SGD's momentum buffer,
// for a parameter whose gradient has stayed 0: the weights of Fashion-MNIST's
// always-black pixels) turns subnormal after some hundreds of steps, and an x86 core
// takes a microcode assist for every operation on a subnormal: the MLP's training
// step went from 1.6 to 2.9 ms from step 700 on. Such state is stored as +0 (and so
// is -0: the next step would make it +0 anyway); the step it would have made is
// below 1e-30 of the weight. NaN and infinities pass unchanged.
KILN_HOST_DEVICE inline float flush_subnormal(float x) {
  return x < kSmallestNormal && x > -kSmallestNormal ? 0.0f : x;
}

}  // namespace kiln::ops
