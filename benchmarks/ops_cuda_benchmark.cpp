// Micro benchmarks of the CUDA training ops at the shapes of the Fashion-MNIST MLP
// and CNN (batch 128), float32 and bf16: GEMM (cuBLASLt), convolution forward and
// backward (cuDNN), and the fused multi-tensor AdamW step. Each iteration waits for
// the device, so times are the ops' own. Without a usable GPU every benchmark
// reports why and records nothing.
//   build/bin/ops_cuda_benchmark --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>
#include <kiln/device.h>
#include <kiln/tensor/tensor.h>

#include <vector>

#include "conv_shapes.h"
#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/optim.h"

namespace {

using kiln::Tensor;
using kiln::ops::MathPrecision;

const kiln::Device kGpu = kiln::Device::cuda(0);

bool skip_without_gpu(benchmark::State& state) {
  static const kiln::DeviceReport report = kiln::probe_devices();
  if (!report.devices.empty()) return false;
  state.SkipWithError(("no usable CUDA device: " + report.why_none).c_str());
  return true;
}

Tensor filled(kiln::Shape shape, float value) {
  return Tensor::full(std::move(shape), value, kGpu);
}

MathPrecision precision_of(std::int64_t argument) {
  return argument != 0 ? MathPrecision::BF16 : MathPrecision::F32;
}

// C[m, n] = A[m, k] B[n, k]^T + bias, the Linear forward; arguments m, k, n, bf16.
void BM_CudaGemmLinearForward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const auto m = state.range(0), k = state.range(1), n = state.range(2);
  const Tensor a = filled({m, k}, 0.5f), b = filled({n, k}, 0.25f), bias = filled({n}, 0.1f);
  Tensor c = Tensor::empty({m, n}, kiln::DType::F32, kGpu);
  for (auto _ : state) {
    kiln::ops::gemm(a, false, b, true, c, 1.0f, 0.0f, precision_of(state.range(3)), bias);
    cudaDeviceSynchronize();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(m * n * k),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_CudaGemmLinearForward)
    ->Args({128, 784, 256, 0})
    ->Args({128, 784, 256, 1})
    ->Args({128, 3136, 128, 0})
    ->Args({128, 3136, 128, 1})
    ->Args({4096, 4096, 4096, 0})
    ->Args({4096, 4096, 4096, 1});

using kiln::bench::conv_flops;
constexpr auto geometry = kiln::bench::conv3x3_geometry;

// Arguments: input channels, image size, output channels (the CNN's two convs), bf16.
void BM_CudaConvForwardBackward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const auto g = geometry(state.range(0), state.range(1), state.range(2));
  const MathPrecision precision = precision_of(state.range(3));
  const Tensor x = filled(g.input_shape(), 0.5f), w = filled(g.weight_shape(), 0.1f),
               b = filled({g.out_channels}, 0.0f), dy = filled(g.output_shape(), 0.01f);
  Tensor y = Tensor::empty(g.output_shape(), kiln::DType::F32, kGpu);
  Tensor dx = g.in_channels > 1 ? Tensor::empty(g.input_shape(), kiln::DType::F32, kGpu) : Tensor();
  Tensor dw = Tensor::zeros(g.weight_shape(), kiln::DType::F32, kGpu);
  Tensor db = Tensor::zeros({g.out_channels}, kiln::DType::F32, kGpu);
  for (auto _ : state) {
    kiln::ops::conv2d_forward(g, x, w, b, y, precision);
    kiln::ops::conv2d_backward(g, x, w, dy, dx, dw, db, precision);
    cudaDeviceSynchronize();
  }
  state.counters["GFLOP/s"] = benchmark::Counter((g.in_channels > 1 ? 3 : 2) * conv_flops(g),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_CudaConvForwardBackward)
    ->Args({1, 28, 32, 0})
    ->Args({1, 28, 32, 1})
    ->Args({32, 14, 64, 0})
    ->Args({32, 14, 64, 1})
    ->Unit(benchmark::kMicrosecond);

// One fused AdamW step over the MLP's parameters (784-256-128-10: six tensors).
void BM_CudaAdamWStepMlp(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const std::vector<kiln::Shape> shapes = {{256, 784}, {256}, {128, 256}, {128}, {10, 128}, {10}};
  std::vector<Tensor> value, grad, m, v;
  std::int64_t elements = 0;
  for (const kiln::Shape& shape : shapes) {
    value.push_back(filled(shape, 0.1f));
    grad.push_back(filled(shape, 0.01f));
    m.push_back(filled(shape, 0.0f));
    v.push_back(filled(shape, 0.0f));
    elements += value.back().numel();
  }
  std::vector<kiln::ops::ParameterUpdate> updates;
  for (std::size_t i = 0; i < shapes.size(); ++i)
    updates.push_back({&value[i], &grad[i], {&m[i], &v[i]}});
  const kiln::ops::AdamWScalars s{0.99999f, 0.9f, 0.999f, 0.1f, 0.001f, 0.001f, 0.03f, 1e-8f};
  for (auto _ : state) {
    kiln::ops::adamw_multi_step(s, updates);
    cudaDeviceSynchronize();
  }
  state.counters["params/s"] = benchmark::Counter(static_cast<double>(elements),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CudaAdamWStepMlp)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
