// Private to the optimizer ops: the clipping factor, one __host__ __device__
// definition for both twins (ClipByNorm in optim.cpp and optim.cu).
#pragma once

#include <cmath>

#include "kernels/philox.cuh"  // KILN_HOST_DEVICE

namespace kiln::ops {

// torch.nn.utils.clip_grad_norm_'s factor for a total of squares, in double as
// Python computes it; clipping scales only when it is below 1.
KILN_HOST_DEVICE inline double clip_coefficient(float sum_squares, float max_norm) {
  return static_cast<double>(max_norm) / (sqrt(static_cast<double>(sum_squares)) + 1e-6);
}

}  // namespace kiln::ops
