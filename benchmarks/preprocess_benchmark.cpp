// The CPU twin of the fused preprocessing, one batch per iteration: Fashion-MNIST
// batches (128 x 28x28x1) and CIFAR-sized ones (256 x 32x32x3), with every
// augmentation on or off. Counters: samples/s and MB/s (u8 in + f32 out).
#include "kernels/preprocess.h"

#include <benchmark/benchmark.h>

#include <vector>

namespace {

using kiln::kernels::PreprocessOptions;

PreprocessOptions options(int channels, int side, bool augment) {
  PreprocessOptions o;
  o.channels = channels;
  o.height = o.width = side;
  for (int c = 0; c < channels; ++c) o.mean[c] = 0.5f, o.std[c] = 0.25f;
  if (augment) {
    o.crop_padding = 4;
    o.flip_probability = 0.5f;
    o.erase_probability = 0.5f;
  }
  return o;
}

void BM_PreprocessCpu(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const int channels = static_cast<int>(state.range(1));
  const int side = static_cast<int>(state.range(2));
  const PreprocessOptions o = options(channels, side, state.range(3) != 0);
  const std::size_t pixels = static_cast<std::size_t>(batch) * channels * side * side;
  std::vector<std::uint8_t> in(pixels);
  for (std::size_t i = 0; i < pixels; ++i) in[i] = static_cast<std::uint8_t>(i * 31);
  std::vector<float> out(pixels);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(batch));
  std::int64_t step = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) ids[static_cast<std::size_t>(i)] = step * batch + i;
    kiln::kernels::preprocess_batch_cpu(in.data(), batch, ids.data(), o, {.seed = 1, .epoch = 0},
                                        out.data());
    benchmark::DoNotOptimize(out.data());
    ++step;
  }
  state.counters["samples/s"] =
      benchmark::Counter(static_cast<double>(step * batch), benchmark::Counter::kIsRate);
  state.counters["MB/s"] =
      benchmark::Counter(static_cast<double>(step) * pixels * 5 / 1e6, benchmark::Counter::kIsRate);
}

BENCHMARK(BM_PreprocessCpu)
    ->ArgNames({"batch", "channels", "side", "augment"})
    ->Args({128, 1, 28, 0})
    ->Args({128, 1, 28, 1})
    ->Args({256, 3, 32, 1})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
