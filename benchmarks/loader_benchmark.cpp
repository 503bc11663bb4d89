// StreamingLoader throughput from the page cache: one epoch of a Fashion-MNIST
// sized data set (60000 rows of 784 + 1 bytes, chunked and deflated as `kiln data
// import` writes it), batches of 128, with and without shuffling, under a memory
// budget that holds all of it (256 MiB) or a quarter (12 MiB: windows of a few
// chunks). Counters: MB/s of rows delivered and samples/s. The data is written
// once per process to a temporary directory.
#include <kiln/data/dataset.h>
#include <kiln/data/loader.h>
#include <kiln/fs.h>

#include <benchmark/benchmark.h>

#include <filesystem>

namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kRows = 60000;
constexpr std::int64_t kRowBytes = 784;

// Image-like rows: smooth blobs over a dark background, so that deflate sees about
// Fashion-MNIST's ratio (roughly 2:1) rather than noise or zeros.
kiln::data::Array images() {
  kiln::data::Array x{"x", kiln::DType::U8, {kRows, 28, 28}, {}};
  x.bytes.resize(static_cast<std::size_t>(kRows * kRowBytes));
  std::uint64_t state = 1;
  for (std::int64_t i = 0; i < kRows; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const int cx = 8 + static_cast<int>(state >> 60), cy = 8 + static_cast<int>((state >> 56) & 15);
    for (int y = 0; y < 28; ++y)
      for (int x_ = 0; x_ < 28; ++x_) {
        const int d = (x_ - cx) * (x_ - cx) + (y - cy) * (y - cy);
        const int noise = static_cast<int>((state >> ((x_ + y) % 48)) & 15);
        x.bytes[static_cast<std::size_t>(i * kRowBytes + y * 28 + x_)] =
            static_cast<std::uint8_t>(d < 100 ? 255 - 2 * d + noise : noise);
      }
  }
  return x;
}

class Data {
 public:
  Data() : root_(kiln::make_unique_directory(fs::temp_directory_path(), "kiln-loader-bench-")) {
    kiln::data::Array y{"y", kiln::DType::U8, {kRows}, std::vector<std::uint8_t>(kRows)};
    for (std::int64_t i = 0; i < kRows; ++i) y.bytes[static_cast<std::size_t>(i)] = i % 10;
    file_ = kiln::data::DatasetStore(root_).put("bench", {images(), std::move(y)}, {}).file;
  }
  ~Data() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  const fs::path& file() const { return file_; }

 private:
  fs::path root_, file_;
};

const Data& data() {
  static const Data instance;
  return instance;
}

void BM_LoaderEpoch(benchmark::State& state) {
  kiln::data::LoaderOptions options;
  options.file = data().file();
  options.global_batch_size = 128;
  options.shuffle = state.range(0) != 0;
  options.memory_budget_bytes = static_cast<std::size_t>(state.range(1)) << 20;
  kiln::data::StreamingLoader loader(options);
  std::int64_t epoch = 0, rows = 0;
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    while (auto batch = loader.next()) {
      benchmark::DoNotOptimize(batch->array("x").bytes.data());
      rows += batch->rows;
    }
  }
  state.counters["samples/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["MB/s"] = benchmark::Counter(static_cast<double>(rows * (kRowBytes + 1)) / 1e6,
                                              benchmark::Counter::kIsRate);
  state.counters["window_blocks"] = static_cast<double>(loader.window_blocks());
}

BENCHMARK(BM_LoaderEpoch)
    ->ArgNames({"shuffle", "budget_mb"})
    ->Args({0, 256})
    ->Args({1, 256})
    ->Args({1, 12})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
