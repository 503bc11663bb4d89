// The fused preprocessing kernel on the GPU, against the device's own copy
// bandwidth (a cudaMemcpyAsync of the same bytes: u8 in + f32 out), which the
// SPEC's target is stated in (>= 80%). Timed with CUDA events; skipped, saying
// why, without a device.
#include "kernels/preprocess_cuda.h"

#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <vector>

namespace {

using kiln::kernels::PreprocessOptions;

struct DeviceBatch {
  std::uint8_t* in = nullptr;
  float* out = nullptr;
  std::int64_t* ids = nullptr;
  std::uint8_t* copy_target = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;

  DeviceBatch(std::size_t pixels, std::int64_t batch) {
    cudaMalloc(reinterpret_cast<void**>(&in), pixels);
    cudaMalloc(reinterpret_cast<void**>(&out), pixels * sizeof(float));
    cudaMalloc(reinterpret_cast<void**>(&copy_target), pixels * 5);
    cudaMalloc(reinterpret_cast<void**>(&ids), static_cast<std::size_t>(batch) * 8);
    std::vector<std::int64_t> host(static_cast<std::size_t>(batch));
    for (std::int64_t i = 0; i < batch; ++i) host[static_cast<std::size_t>(i)] = i;
    cudaMemcpy(ids, host.data(), host.size() * 8, cudaMemcpyHostToDevice);
    cudaMemset(in, 7, pixels);
    cudaStreamCreate(&stream);
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
  }
  ~DeviceBatch() {
    cudaFree(in);
    cudaFree(out);
    cudaFree(copy_target);
    cudaFree(ids);
    cudaStreamDestroy(stream);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
};

bool have_device(benchmark::State& state) {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status == cudaSuccess && devices > 0) return true;
  state.SkipWithError(status != cudaSuccess ? cudaGetErrorString(status) : "no CUDA device");
  return false;
}

// Times `work` with events on the stream; reports GB/s of `bytes` per iteration.
template <class Work>
void run_timed(benchmark::State& state, DeviceBatch& device, std::size_t bytes, Work work) {
  for (auto _ : state) {
    cudaEventRecord(device.start, device.stream);
    work();
    cudaEventRecord(device.stop, device.stream);
    cudaEventSynchronize(device.stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, device.start, device.stop);
    state.SetIterationTime(ms / 1e3);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void BM_PreprocessCuda(benchmark::State& state) {
  if (!have_device(state)) return;
  const std::int64_t batch = state.range(0);
  const int side = static_cast<int>(state.range(1));
  PreprocessOptions o;
  o.channels = 3;
  o.height = o.width = side;
  o.crop_padding = 4;
  o.flip_probability = 0.5f;
  o.erase_probability = 0.5f;
  const std::size_t pixels = static_cast<std::size_t>(batch) * 3 * side * side;
  DeviceBatch device(pixels, batch);
  run_timed(state, device, pixels * 5, [&] {
    kiln::kernels::launch_preprocess(device.in, batch, device.ids, o, {.seed = 1, .epoch = 0},
                                     device.out, device.stream);
  });
}

void BM_DeviceCopy(benchmark::State& state) {
  if (!have_device(state)) return;
  const std::size_t pixels =
      static_cast<std::size_t>(state.range(0)) * 3 * state.range(1) * state.range(1);
  DeviceBatch device(pixels, state.range(0));
  // Reads and writes pixels * 5 bytes in all, as the kernel does.
  run_timed(state, device, pixels * 5, [&] {
    cudaMemcpyAsync(device.copy_target, reinterpret_cast<const std::uint8_t*>(device.out),
                    pixels * 5 / 2, cudaMemcpyDeviceToDevice, device.stream);
  });
}

BENCHMARK(BM_PreprocessCuda)
    ->ArgNames({"batch", "side"})
    ->Args({256, 32})
    ->Args({1024, 224})
    ->UseManualTime();
BENCHMARK(BM_DeviceCopy)
    ->ArgNames({"batch", "side"})
    ->Args({256, 32})
    ->Args({1024, 224})
    ->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
