// The suites of `kiln bench` (docs/cli.md): each runs programs and turns what they
// print into Measurements.
//   ops    ops_benchmark: GEMM, convolution, optimizer and loss micro benchmarks
//   data   loader_benchmark and preprocess_benchmark
//   train  the MLP and the CNN trained by `kiln run` for an epoch (and the PyTorch
//          peer, torch_peer.py, with --peer torch)
//   dist   allreduce_benchmark: Gloo over loopback; NCCL with two or more GPUs
//   gpu    ops_cuda_benchmark and preprocess_cuda_benchmark, with a GPU
// The Google Benchmark programs are found in KILN_BENCH_DIR, else
// <kiln>/../libexec/kiln/benchmarks (installed), else beside kiln (the build tree).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bench_record.h"

namespace kiln::cli::bench {

inline const std::vector<std::string> kSuites = {"ops", "data", "train", "dist", "gpu"};

struct SuiteOptions {
  int repeat = 3;
  std::string filter;   // a Google Benchmark --benchmark_filter regex; empty: all
  double min_time = 0;  // seconds per Google Benchmark repetition; 0: its default
  std::filesystem::path data = "/usr/share/datasets/fashion-mnist";
  std::vector<std::string> models = {"mlp", "cnn"};
  int threads = 0;  // train: both sides; 0: the cores available
  int batch = 128;
  int window = 20;   // train: steps per throughput window
  std::string peer;  // "torch" or empty
};

// What a suite needs, checked before any suite runs: its programs, the benchmarks
// --filter selects, the training data and models, the peer's script. ConfigError
// naming what is missing.
void check_suite(const std::string& suite, const SuiteOptions& options);

// Runs one suite (check_suite passed) `options.repeat` times and adds its measurements (or a note
// saying why it was skipped) to `record`.
void run_suite(const std::string& suite, const SuiteOptions& options, BenchRecord& record);

// Figures made of two suites' measurements, added when both ran:
// train/mlp/gemm_bound_share, the MLP's samples/s over its GEMM-only bound
// (128 samples per ops/BM_MlpStepGemms/0 time, the same batch and threads).
void add_derived(const SuiteOptions& options, BenchRecord& record);

// Where the programs of the suites are looked for, in order.
std::vector<std::filesystem::path> program_dirs();

}  // namespace kiln::cli::bench
