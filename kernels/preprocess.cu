// Fused preprocessing on the GPU: kernel first, launcher after. One block per
// sample: thread 0 draws the sample's choices into shared memory, then the block
// walks the sample's output pixels with consecutive threads on consecutive
// outputs, so stores are coalesced (and loads too, within an image row).
// Compiled with --fmad=false so that results equal the CPU twin's bit for bit.
// (No fmt here: nvcc cannot evaluate fmt's consteval format strings.)
#include "kernels/preprocess_cuda.h"
#include "kernels/preprocess_sample.cuh"

#include <kiln/error.h>

#include <string>

namespace kiln::kernels {
namespace {

constexpr int kThreads = 256;

__global__ void preprocess_kernel(const std::uint8_t* __restrict__ in,
                                  const std::int64_t* __restrict__ sample_ids,
                                  PreprocessOptions options, AugmentKey key,
                                  float* __restrict__ out) {
  __shared__ SampleParams params;
  const std::int64_t sample = blockIdx.x;
  if (threadIdx.x == 0)
    params = draw_sample_params(options, key.seed, key.epoch, sample_ids[sample]);
  __syncthreads();
  const int plane = options.height * options.width;
  const int pixels = plane * options.channels;
  const std::uint8_t* image = in + sample * pixels;
  float* target = out + sample * pixels;
  for (int i = threadIdx.x; i < pixels; i += blockDim.x) {
    const int c = i / plane;
    const int y = (i % plane) / options.width;
    const int x = i % options.width;
    target[i] = preprocess_pixel(image, options, params, c, y, x);
  }
}

}  // namespace

void launch_preprocess(const std::uint8_t* in, std::int64_t n, const std::int64_t* sample_ids,
                       const PreprocessOptions& options, const AugmentKey& key, float* out,
                       cudaStream_t stream) {
  check_preprocess_options(options);
  if (n < 0 || n > 0x7fffffff)
    throw InternalError("preprocess: batch of " + std::to_string(n) + " samples is out of range");
  if (n == 0) return;
  preprocess_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(in, sample_ids, options, key,
                                                                       out);
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw InternalError(std::string("preprocess: kernel launch failed: ") +
                        cudaGetErrorString(status));
}

}  // namespace kiln::kernels
