// The fused preprocessing kernel against its CPU twin: bit-identical output for
// the same seed, epoch and sample ids. Skipped, saying why, without a GPU.
#include "kernels/preprocess_cuda.h"
#include "kernels/preprocess.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace kiln::kernels {
namespace {

class PreprocessCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    const cudaError_t status = cudaGetDeviceCount(&devices);
    if (status != cudaSuccess || devices == 0)
      GTEST_SKIP() << "no CUDA device: "
                   << (status != cudaSuccess ? cudaGetErrorString(status) : "none found")
                   << " (the CUDA kernel is compiled, not run, on this machine)";
  }
};

void compare(const PreprocessOptions& options, std::int64_t n, const AugmentKey& key) {
  const std::int64_t pixels = std::int64_t{options.channels} * options.height * options.width;
  std::vector<std::uint8_t> in(static_cast<std::size_t>(n * pixels));
  std::mt19937 random(5);
  for (auto& byte : in) byte = static_cast<std::uint8_t>(random());
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) ids[i] = 1000 + 7 * i;
  std::vector<float> cpu(in.size()), gpu(in.size());
  preprocess_batch_cpu(in.data(), n, ids.data(), options, key, cpu.data());

  std::uint8_t* d_in = nullptr;
  std::int64_t* d_ids = nullptr;
  float* d_out = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_in), in.size()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_ids), ids.size() * sizeof(std::int64_t)),
            cudaSuccess);
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d_out), gpu.size() * sizeof(float)), cudaSuccess);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  cudaMemcpyAsync(d_in, in.data(), in.size(), cudaMemcpyHostToDevice, stream);
  cudaMemcpyAsync(d_ids, ids.data(), ids.size() * 8, cudaMemcpyHostToDevice, stream);
  launch_preprocess(d_in, n, d_ids, options, key, d_out, stream);
  cudaMemcpyAsync(gpu.data(), d_out, gpu.size() * sizeof(float), cudaMemcpyDeviceToHost, stream);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  cudaStreamDestroy(stream);
  cudaFree(d_in);
  cudaFree(d_ids);
  cudaFree(d_out);
  ASSERT_EQ(std::memcmp(cpu.data(), gpu.data(), cpu.size() * sizeof(float)), 0)
      << "first difference at "
      << (std::mismatch(cpu.begin(), cpu.end(), gpu.begin()).first - cpu.begin());
}

TEST_F(PreprocessCuda, EqualsTheCpuTwinBitForBit) {
  PreprocessOptions options;
  options.height = options.width = 28;
  options.mean[0] = 0.2860f;
  options.std[0] = 0.3530f;
  options.crop_padding = 4;
  options.flip_probability = 0.5f;
  options.erase_probability = 0.5f;
  compare(options, 256, {.seed = 42, .epoch = 3});
}

TEST_F(PreprocessCuda, EqualsTheCpuTwinForRgb) {
  PreprocessOptions options;
  options.channels = 3;
  options.height = options.width = 32;
  for (int c = 0; c < 3; ++c) options.mean[c] = 0.45f + 0.01f * c, options.std[c] = 0.22f;
  options.crop_padding = 4;
  options.flip_probability = 0.5f;
  options.erase_probability = 0.25f;
  compare(options, 64, {.seed = 7, .epoch = 0});
}

}  // namespace
}  // namespace kiln::kernels
