// The CUDA launcher of the fused preprocessing kernel (preprocess.cu); options,
// layout and draws as in preprocess.h. Only in builds with KILN_CUDA.
#pragma once

#include "kernels/preprocess.h"

#include <cuda_runtime_api.h>

namespace kiln::kernels {

// `in` (u8 [n, H, W, C]), `sample_ids` (n) and `out` (f32 [n, C, H, W]) are
// device pointers. Enqueued on `stream`; returns without waiting. Throws
// ConfigError for bad options and InternalError naming the CUDA error if the
// launch fails.
void launch_preprocess(const std::uint8_t* in, std::int64_t n, const std::int64_t* sample_ids,
                       const PreprocessOptions& options, const AugmentKey& key, float* out,
                       cudaStream_t stream);

}  // namespace kiln::kernels
