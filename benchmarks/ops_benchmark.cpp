// Micro benchmarks of the CPU training ops at the shapes of the Fashion-MNIST MLP
// and CNN (batch 128): GEMM, convolution forward and backward, max pooling, the
// AdamW update, softmax cross-entropy. Threads: KILN_NUM_THREADS or all cores.
//   build/bin/ops_benchmark --benchmark_min_time=0.5     (or: kiln bench ops)
//
// KILN_BENCH_INJECT_SLOWDOWN=<function name> (e.g. BM_AdamWStep) makes that
// benchmark do its work twice per iteration: a known 2x regression, with which the
// tests check that `kiln bench --compare` catches one.
#include <benchmark/benchmark.h>
#include <kiln/cpu_threads.h>
#include <kiln/nn/optimizer.h>
#include <kiln/tensor/tensor.h>

#include <cstdlib>
#include <string_view>
#include <vector>

#include "conv_shapes.h"
#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/loss.h"
#include "ops/pool.h"

namespace {

using kiln::Tensor;

Tensor filled(kiln::Shape shape, float value) { return Tensor::full(std::move(shape), value); }

// How many times the benchmark `function` does its work per iteration: 2 where
// KILN_BENCH_INJECT_SLOWDOWN names it, else 1.
int work_repeats(const char* function) {
  const char* inject = std::getenv("KILN_BENCH_INJECT_SLOWDOWN");
  return inject != nullptr && std::string_view(inject) == function ? 2 : 1;
}

// C[m, n] = A[m, k] B[n, k]^T, the Linear forward; arguments m, k, n.
void BM_GemmLinearForward(benchmark::State& state) {
  kiln::set_cpu_threads(0);
  const auto m = state.range(0), k = state.range(1), n = state.range(2);
  const Tensor a = filled({m, k}, 0.5f), b = filled({n, k}, 0.25f);
  Tensor c = Tensor::empty({m, n});
  const int repeats = work_repeats(__func__);
  for (auto _ : state)
    for (int r = 0; r < repeats; ++r) kiln::ops::gemm(a, false, b, true, c);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(m * n * k),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_GemmLinearForward)
    ->Args({128, 784, 256})
    ->Args({128, 256, 128})
    ->Args({128, 3136, 128});

// Every GEMM of one training step of the MLP 784-256-128-10 at batch 128, as
// layers_dense.cpp calls them: per layer the forward x W^T (+ bias), the weight
// gradient dy^T x accumulated (beta 1), and the input gradient dy W except for the
// first layer. Argument: 1 for bf16 factors. The MLP's GEMM-only bound is 128
// samples per iteration time ("bound samples/s"); RESULTS.md sets kiln's MLP
// throughput against it.
void BM_MlpStepGemms(benchmark::State& state) {
  kiln::set_cpu_threads(0);
  const auto precision =
      state.range(0) != 0 ? kiln::ops::MathPrecision::BF16 : kiln::ops::MathPrecision::F32;
  const std::int64_t batch = 128, widths[] = {784, 256, 128, 10};
  struct Layer {
    Tensor x, w, b, y, dy, dw, dx;
  };
  std::vector<Layer> layers;
  for (int i = 0; i < 3; ++i) {
    const std::int64_t in = widths[i], out = widths[i + 1];
    layers.push_back({filled({batch, in}, 0.5f), filled({out, in}, 0.01f), filled({out}, 0.1f),
                      Tensor::empty({batch, out}), filled({batch, out}, 0.01f),
                      filled({out, in}, 0.0f), Tensor::empty({batch, in})});
  }
  const int repeats = work_repeats(__func__);
  for (auto _ : state)
    for (int r = 0; r < repeats; ++r) {
      for (Layer& l : layers) kiln::ops::gemm(l.x, false, l.w, true, l.y, 1, 0, precision, l.b);
      for (int i = 2; i >= 0; --i) {
        Layer& l = layers[static_cast<std::size_t>(i)];
        kiln::ops::gemm(l.dy, true, l.x, false, l.dw, 1, 1, precision);
        if (i > 0) kiln::ops::gemm(l.dy, false, l.w, false, l.dx, 1, 0, precision);
      }
    }
  state.counters["bound samples/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MlpStepGemms)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

using kiln::bench::conv_flops;
constexpr auto geometry = kiln::bench::conv3x3_geometry;

// Arguments: input channels, image size, output channels (the CNN's two convs).
void BM_ConvForward(benchmark::State& state) {
  kiln::set_cpu_threads(0);
  const auto g = geometry(state.range(0), state.range(1), state.range(2));
  const Tensor x = filled(g.input_shape(), 0.5f), w = filled(g.weight_shape(), 0.1f),
               b = filled({g.out_channels}, 0.0f);
  Tensor y = Tensor::empty(g.output_shape());
  const int repeats = work_repeats(__func__);
  for (auto _ : state)
    for (int r = 0; r < repeats; ++r) kiln::ops::conv2d_forward(g, x, w, b, y);
  state.counters["GFLOP/s"] = benchmark::Counter(
      conv_flops(g), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_ConvForward)->Args({1, 28, 32})->Args({32, 14, 64})->Unit(benchmark::kMillisecond);

void BM_ConvBackward(benchmark::State& state) {
  kiln::set_cpu_threads(0);
  const auto g = geometry(state.range(0), state.range(1), state.range(2));
  const Tensor x = filled(g.input_shape(), 0.5f), w = filled(g.weight_shape(), 0.1f),
               dy = filled(g.output_shape(), 0.01f);
  Tensor dx = g.in_channels > 1 ? Tensor::empty(g.input_shape()) : Tensor();
  Tensor dw = Tensor::zeros(g.weight_shape()), db = Tensor::zeros({g.out_channels});
  const int repeats = work_repeats(__func__);
  for (auto _ : state)
    for (int r = 0; r < repeats; ++r) kiln::ops::conv2d_backward(g, x, w, dy, dx, dw, db);
  // Data and weight gradients: two convolutions' worth (one without dx for 1 channel).
  state.counters["GFLOP/s"] = benchmark::Counter((g.in_channels > 1 ? 2 : 1) * conv_flops(g),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_ConvBackward)->Args({1, 28, 32})->Args({32, 14, 64})->Unit(benchmark::kMillisecond);

// 2x2 max pooling after the CNN's convolutions; arguments: channels, image size.
void BM_MaxPoolForward(benchmark::State& state) {
  kiln::set_cpu_threads(0);
  const kiln::ops::Pool2dGeometry g{128, state.range(0), state.range(1), state.range(1)};
  const Tensor x = filled(g.input_shape(), 0.5f);
  Tensor y = Tensor::empty(g.output_shape()),
         argmax = Tensor::empty(g.output_shape(), kiln::DType::I32);
  const int repeats = work_repeats(__func__);
  for (auto _ : state)
    for (int r = 0; r < repeats; ++r) kiln::ops::max_pool2d_forward(g, x, y, argmax);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(x.nbytes()));
}
BENCHMARK(BM_MaxPoolForward)->Args({32, 28})->Args({64, 14})->Unit(benchmark::kMicrosecond);

void BM_MaxPoolBackward(benchmark::State& state) {
  kiln::set_cpu_threads(0);
  const kiln::ops::Pool2dGeometry g{128, state.range(0), state.range(1), state.range(1)};
  const Tensor x = filled(g.input_shape(), 0.5f), dy = filled(g.output_shape(), 0.01f);
  Tensor y = Tensor::empty(g.output_shape()),
         argmax = Tensor::empty(g.output_shape(), kiln::DType::I32),
         dx = Tensor::empty(g.input_shape());
  kiln::ops::max_pool2d_forward(g, x, y, argmax);
  const int repeats = work_repeats(__func__);
  for (auto _ : state)
    for (int r = 0; r < repeats; ++r) kiln::ops::max_pool2d_backward(g, dy, argmax, dx);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(dx.nbytes()));
}
BENCHMARK(BM_MaxPoolBackward)->Args({32, 28})->Args({64, 14})->Unit(benchmark::kMicrosecond);

// One AdamW step over the MLP's 235,146 parameters.
void BM_AdamWStep(benchmark::State& state) {
  kiln::set_cpu_threads(0);
  std::vector<kiln::nn::Parameter> parameters;
  for (const kiln::Shape& shape :
       std::vector<kiln::Shape>{{256, 784}, {256}, {128, 256}, {128}, {10, 128}, {10}})
    parameters.push_back(
        {"p" + std::to_string(parameters.size()), filled(shape, 0.1f), filled(shape, 0.01f)});
  std::vector<kiln::nn::Parameter*> pointers;
  for (auto& p : parameters) pointers.push_back(&p);
  auto optimizer = kiln::nn::make_adamw({});
  const int repeats = work_repeats(__func__);
  for (auto _ : state)
    for (int r = 0; r < repeats; ++r) optimizer->step(pointers);
  state.SetItemsProcessed(state.iterations() * 235146);
}
BENCHMARK(BM_AdamWStep);

void BM_SoftmaxCrossEntropy(benchmark::State& state) {
  kiln::set_cpu_threads(0);
  const Tensor logits = filled({128, 10}, 0.3f);
  Tensor labels = Tensor::zeros({128}, kiln::DType::I32);
  Tensor dlogits = Tensor::empty({128, 10}), loss = Tensor::zeros({1}),
         correct = Tensor::zeros({1});
  const int repeats = work_repeats(__func__);
  for (auto _ : state)
    for (int r = 0; r < repeats; ++r)
      kiln::ops::softmax_cross_entropy(logits, labels, 0.1f, 1.0f / 128, dlogits, loss, correct);
  state.SetItemsProcessed(state.iterations() * 128);
}
BENCHMARK(BM_SoftmaxCrossEntropy);

}  // namespace

BENCHMARK_MAIN();
