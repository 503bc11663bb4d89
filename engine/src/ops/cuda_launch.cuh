// Private to the ops' CUDA twins: grid-stride indexing and the one launcher that
// every simple kernel goes through (the device's current stream, a grid sized to
// the device, the launch checked). nvcc cannot evaluate fmt's consteval format
// strings, so errors here are built with std::string.
#pragma once

#include <cstdint>
#include <utility>

#include "tensor/cuda_context.h"

namespace kiln::ops::cuda_detail {

inline constexpr int kThreads = 256;

__device__ inline std::int64_t first_index() {
  return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline std::int64_t grid_stride() {
  return static_cast<std::int64_t>(blockDim.x) * gridDim.x;
}

// Launches kernel(n, args...) over a grid-stride loop of n elements on `device`'s
// stream; nothing for n == 0. StageError naming `name` if the launch fails.
template <class... Params, class... Args>
void launch(const char* name, Device device, std::int64_t n,
            void (*kernel)(std::int64_t, Params...), Args&&... args) {
  if (n <= 0) return;
  const cudaStream_t stream = cuda::stream(device);
  kernel<<<cuda::grid_for(device, n, kThreads), kThreads, 0, stream>>>(n,
                                                                       std::forward<Args>(args)...);
  cuda::check_launch(name);
}

// Sum over a block of `kBlock` threads, in a fixed order (so results repeat run to
// run); every thread gets the total. `scratch` holds kBlock / 32 values.
template <int kBlock, class T>
__device__ T block_sum(T value, T* scratch) {
  static_assert(kBlock % 32 == 0 && kBlock <= 1024);
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_down_sync(0xffffffffu, value, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < kBlock / 32; ++w) total += scratch[w];
  return total;
}

}  // namespace kiln::ops::cuda_detail
