#include "bench_suites.h"

#include <kiln/child_program.h>
#include <kiln/cpu_threads.h>
#include <kiln/device.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/registry/mlflow_store.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

#include "launcher.h"

namespace kiln::cli::bench {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Runs a program of a suite; StageError with the end of its standard error when it
// fails.
ChildResult run_checked(const std::string& suite, const std::vector<std::string>& argv) {
  ChildResult result = run_child(argv);
  if (result.exit_code != 0)
    throw StageError(
        fmt::format("bench {}: {} {}: {}", suite, fs::path(argv[0]).filename().string(),
                    result.signal != 0 ? "was killed by " + signal_name(result.signal)
                                       : fmt::format("exited with {}", result.exit_code),
                    last_line(result.err).empty() ? "(no message)" : last_line(result.err)));
  return result;
}

fs::path find_program(const std::string& suite, const std::string& name) {
  std::vector<std::string> looked;
  for (const fs::path& dir : program_dirs()) {
    if (::access((dir / name).c_str(), X_OK) == 0) return dir / name;
    looked.push_back(dir.string());
  }
  throw ConfigError(fmt::format(
      "bench {}: {} is not in {} (the benchmarks are built with KILN_BUILD_BENCHMARKS=ON)", suite,
      name, fmt::join(looked, " nor ")));
}

double to_microseconds(double value, const std::string& unit) {
  if (unit == "ns") return value / 1e3;
  if (unit == "ms") return value * 1e3;
  if (unit == "s") return value * 1e6;
  return value;  // "us"
}

// The measurements in a Google Benchmark JSON report: one per benchmark, one value
// per repetition (its real time per iteration, in microseconds).
std::vector<Measurement> parse_google_benchmark(const std::string& suite, const std::string& text,
                                                const std::string& program) {
  Json report;
  try {
    report = Json::parse(text);
  } catch (const Json::parse_error& error) {
    throw StageError(
        fmt::format("bench {}: {} printed no JSON report: {}", suite, program, error.what()));
  }
  std::vector<Measurement> out;
  std::map<std::string, std::size_t> index;
  for (const Json& entry : report.value("benchmarks", Json::array())) {
    if (entry.value("run_type", "iteration") != "iteration" || entry.value("error_occurred", false))
      continue;
    const std::string name = suite + "/" + entry.value("run_name", entry.value("name", "?"));
    auto [at, added] = index.try_emplace(name, out.size());
    if (added) out.push_back({name, "us", false, true, {}});
    out[at->second].values.push_back(
        to_microseconds(entry.value("real_time", 0.0), entry.value("time_unit", "ns")));
  }
  return out;
}

// Each repeat is a process of its own: on a shared VM, repeats inside one process
// agreed to a few percent while two processes on the same build differed by up to
// 1.59x (most likely by where their threads and memory landed), so repeats inside
// one process would hide that noise from the spread.
std::vector<Measurement> google_benchmark(const std::string& suite, const std::string& name,
                                          const SuiteOptions& options) {
  const fs::path program = find_program(suite, name);
  std::vector<std::string> argv = {program.string(), "--benchmark_format=json"};
  if (!options.filter.empty()) argv.push_back("--benchmark_filter=" + options.filter);
  if (options.min_time > 0)
    argv.push_back(fmt::format("--benchmark_min_time={}", options.min_time));
  std::vector<Measurement> out;
  for (int i = 0; i < options.repeat; ++i) {
    std::vector<Measurement> once =
        parse_google_benchmark(suite, run_checked(suite, argv).out, name);
    if (out.empty()) {
      out = std::move(once);
      continue;
    }
    for (Measurement& m : once) {
      auto found =
          std::find_if(out.begin(), out.end(), [&](const auto& o) { return o.name == m.name; });
      if (found == out.end())
        throw StageError(
            fmt::format("bench {}: {} ran {} in one repeat only", suite, name, m.name));
      found->values.insert(found->values.end(), m.values.begin(), m.values.end());
    }
  }
  return out;
}

void add_google_benchmarks(const std::string& suite, const std::vector<std::string>& programs,
                           const SuiteOptions& options, BenchRecord& record) {
  for (const std::string& program : programs)
    for (Measurement& m : google_benchmark(suite, program, options))
      record.measurements.push_back(std::move(m));
}

// The programs exist and --filter selects at least one of their benchmarks.
void check_google_benchmarks(const std::string& suite, const std::vector<std::string>& programs,
                             const SuiteOptions& options) {
  std::size_t selected = 0;
  for (const std::string& name : programs) {
    std::vector<std::string> argv = {find_program(suite, name).string(),
                                     "--benchmark_list_tests=true"};
    if (!options.filter.empty()) argv.push_back("--benchmark_filter=" + options.filter);
    const std::string listed = run_checked(suite, argv).out;
    selected += static_cast<std::size_t>(std::count(listed.begin(), listed.end(), '\n'));
  }
  if (selected == 0)
    throw ConfigError(fmt::format("bench {}: --filter '{}' matches none of its benchmarks", suite,
                                  options.filter));
}

// --- train ------------------------------------------------------------------

const std::map<std::string, std::string> kModels = {
    {"mlp",
     "[flatten, {linear: {out: 256}}, relu, {linear: {out: 128}}, relu, "
     "{linear: {out: 10}}]"},
    {"cnn",
     "[{conv2d: {out: 32, kernel: 3, padding: 1}}, relu, {maxpool2d: {kernel: 2}}, "
     "{conv2d: {out: 64, kernel: 3, padding: 1}}, relu, {maxpool2d: {kernel: 2}}, flatten, "
     "{linear: {out: 128}}, relu, {linear: {out: 10}}]"}};

fs::path data_file(const fs::path& dir, const std::string& stem) {
  for (const std::string& name : {stem + ".gz", stem})
    if (fs::is_regular_file(dir / name)) return fs::absolute(dir / name);
  throw ConfigError(fmt::format(
      "bench train: {}: not found (install dataset-fashion-mnist, or pass --data DIR holding "
      "Fashion-MNIST's IDX files)",
      (dir / (stem + ".gz")).string()));
}

struct TrainSetup {
  fs::path scratch;
  fs::path images, labels;
  int threads = 1;
};

// A pipeline that imports the data and trains `model` for one epoch: the same
// settings as the peer (torch_peer.py): batch, AdamW at lr 1e-3, threads.
fs::path write_pipeline(const TrainSetup& setup, const std::string& model,
                        const SuiteOptions& options) {
  const fs::path file = setup.scratch / ("bench-" + model + ".yaml");
  write_file_atomic(
      file, fmt::format(R"(name: bench-{0}
stages:
  data:
    uses: idx_import
    with: {{images: "{1}", labels: "{2}"}}
  train:
    uses: train
    needs: [data]
    with:
      model: {{input: [1, 28, 28], layers: {3}}}
      epochs: 1
      batch_size: {4}
      optimizer: adamw
      lr: 1.0e-3
      threads: {5}
      log_every: {6}
      checkpoint_every: 0
      seed: 0
)",
                        model, setup.images.string(), setup.labels.string(), kModels.at(model),
                        options.batch, setup.threads, options.window));
  return file;
}

// The median of the throughput windows a run logged, the first (warm-up) left out.
double windows_median(const std::vector<double>& windows, const std::string& who) {
  if (windows.size() < 2)
    throw ConfigError(fmt::format(
        "bench train: {} gave {} throughput window(s) in an epoch; 2 or more are needed (more "
        "data, or a smaller --window)",
        who, windows.size()));
  return median(std::vector<double>(windows.begin() + 1, windows.end()));
}

double kiln_samples_per_s(const TrainSetup& setup, const std::string& model,
                          const fs::path& pipeline) {
  const fs::path registry = setup.scratch / "registry";
  run_checked("train", {self_executable().string(), "--registry", registry.string(), "run",
                        pipeline.string(), "--force", "train"});
  const registry::MlflowStore store(registry);
  const auto experiment = store.find_experiment("bench-" + model);
  const auto runs = experiment ? store.list_runs(*experiment) : std::vector<registry::RunInfo>{};
  if (runs.empty())
    throw InternalError(
        fmt::format("bench train: the {} run left no run in {}", model, registry.string()));
  std::vector<double> windows;
  for (const auto& point :
       store.open_run(runs.back().run_id)->metric_history("train/samples_per_s"))
    windows.push_back(point.value);
  return windows_median(windows, "kiln's " + model);
}

std::string python() {
  const char* chosen = std::getenv("KILN_PYTHON");
  return chosen != nullptr && *chosen != '\0' ? chosen : "python3";
}

fs::path peer_script() {
  const fs::path script =
      self_executable().parent_path() / ".." / "share" / "kiln" / "bench" / "torch_peer.py";
  if (!fs::exists(script))
    throw ConfigError(
        fmt::format("bench train --peer torch: {} is missing (it is installed with "
                    "the benchmarks, KILN_BUILD_BENCHMARKS=ON)",
                    script.lexically_normal().string()));
  return script.lexically_normal();
}

// The peer's torch version, or why it cannot run (then the suite notes it and goes
// on without the peer).
std::pair<std::string, std::string> probe_peer(const fs::path& script) {
  const ChildResult result = run_child({python(), script.string(), "--version"});
  if (result.exit_code == 0) return {last_line(result.out), ""};
  return {"", fmt::format("{} cannot run the PyTorch peer: {}", python(),
                          last_line(result.err).empty() ? "exit " + std::to_string(result.exit_code)
                                                        : last_line(result.err))};
}

double torch_samples_per_s(const TrainSetup& setup, const std::string& model,
                           const fs::path& script, const SuiteOptions& options) {
  const ChildResult result =
      run_checked("train", {python(), script.string(), "--model", model, "--threads",
                            std::to_string(setup.threads), "--batch", std::to_string(options.batch),
                            "--window", std::to_string(options.window), "--images",
                            setup.images.string(), "--labels", setup.labels.string()});
  Json windows;
  try {
    windows = Json::parse(last_line(result.out)).at("windows");
  } catch (const Json::exception&) {
    throw StageError(fmt::format("bench train: torch_peer.py printed no result line: '{}'",
                                 last_line(result.out)));
  }
  return windows_median(windows.get<std::vector<double>>(), "PyTorch's " + model);
}

void check_train(const SuiteOptions& options) {
  for (const std::string& model : options.models)
    if (!kModels.contains(model))
      throw ConfigError(fmt::format("bench train: --models: unknown model '{}' (mlp, cnn)", model));
  if (options.models.empty()) throw ConfigError("bench train: --models: none given (mlp, cnn)");
  data_file(options.data, "train-images-idx3-ubyte");
  data_file(options.data, "train-labels-idx1-ubyte");
  if (options.peer == "torch") peer_script();
}

void train_suite(const SuiteOptions& options, BenchRecord& record) {
  TrainSetup setup;
  setup.images = data_file(options.data, "train-images-idx3-ubyte");
  setup.labels = data_file(options.data, "train-labels-idx1-ubyte");
  setup.threads = options.threads > 0 ? options.threads : available_cores();
  record.fingerprint["threads"] = std::to_string(setup.threads);
  fs::path script;
  bool peer = options.peer == "torch";
  if (peer) {
    script = peer_script();
    const auto [version, why_not] = probe_peer(script);
    if (why_not.empty()) {
      record.fingerprint["torch"] = version;
    } else {
      record.notes.push_back("train: no peer: " + why_not);
      peer = false;
    }
  }
  setup.scratch = make_unique_directory(fs::temp_directory_path(), "kiln-bench-");
  try {
    for (const std::string& model : options.models) {
      const fs::path pipeline = write_pipeline(setup, model, options);
      Measurement kiln{"train/" + model + "/samples_per_s", "samples/s", true, true, {}};
      Measurement torch{"train/" + model + "/torch_samples_per_s", "samples/s", true, false, {}};
      Measurement ratio{"train/" + model + "/ratio", "x", true, false, {}};
      // The two sides alternate, so that a drifting machine biases neither.
      for (int i = 0; i < options.repeat; ++i) {
        kiln.values.push_back(kiln_samples_per_s(setup, model, pipeline));
        if (!peer) continue;
        torch.values.push_back(torch_samples_per_s(setup, model, script, options));
        ratio.values.push_back(kiln.values.back() / torch.values.back());
      }
      record.measurements.push_back(kiln);
      if (peer) {
        record.measurements.push_back(torch);
        record.measurements.push_back(ratio);
      }
    }
  } catch (...) {
    fs::remove_all(setup.scratch);
    throw;
  }
  fs::remove_all(setup.scratch);
}

// --- dist ---------------------------------------------------------------------

// allreduce_benchmark's table: "# <backend>, <n> ranks", a header, then rows of
// bytes, iterations, time_us, algbw, busbw.
void parse_allreduce(const std::string& text, std::vector<Measurement>& out) {
  std::istringstream lines(text);
  std::string group;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("# ")) {
      const auto comma = line.find(',');
      const std::string backend = line.substr(2, comma - 2);
      const int ranks = comma == std::string::npos ? 0 : std::atoi(line.c_str() + comma + 1);
      group = fmt::format("dist/{}/{}ranks", backend, ranks);
      continue;
    }
    std::istringstream fields(line);
    long long bytes = 0, iterations = 0;
    double time_us = 0;
    if (group.empty() || !(fields >> bytes >> iterations >> time_us)) continue;
    const std::string name = fmt::format("{}/{}B", group, bytes);
    auto found =
        std::find_if(out.begin(), out.end(), [&](const auto& m) { return m.name == name; });
    if (found == out.end()) found = out.insert(out.end(), {name, "us", false, true, {}});
    found->values.push_back(time_us);
  }
}

void dist_suite(const SuiteOptions& options, BenchRecord& record) {
  const fs::path program = find_program("dist", "allreduce_benchmark");
  std::vector<std::vector<std::string>> runs = {
      {program.string(), "--ranks", "2", "--max-mb", "4"}};
  if (probe_devices().devices.size() >= 2)
    runs.push_back({program.string(), "--ranks", "2", "--max-mb", "64", "--device", "cuda"});
  else
    record.notes.push_back("dist: NCCL not measured: fewer than 2 CUDA devices");
  std::vector<Measurement> found;
  for (int i = 0; i < options.repeat; ++i)
    for (const auto& argv : runs) parse_allreduce(run_checked("dist", argv).out, found);
  if (found.empty()) throw StageError("bench dist: allreduce_benchmark printed no result rows");
  for (Measurement& m : found) record.measurements.push_back(std::move(m));
}

const Measurement* find_measurement(const BenchRecord& record, const std::string& name) {
  for (const Measurement& m : record.measurements)
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace

void add_derived(const SuiteOptions& options, BenchRecord& record) {
  const Measurement* gemms = find_measurement(record, "ops/BM_MlpStepGemms/0");
  const Measurement* mlp = find_measurement(record, "train/mlp/samples_per_s");
  const bool same_setting =
      options.batch == 128 && (options.threads == 0 || options.threads == available_cores());
  if (gemms == nullptr || mlp == nullptr || !same_setting) return;
  Measurement share{"train/mlp/gemm_bound_share", "fraction", true, false, {}};
  for (std::size_t i = 0; i < std::min(gemms->values.size(), mlp->values.size()); ++i)
    share.values.push_back(mlp->values[i] / (128.0 / (gemms->values[i] * 1e-6)));
  record.measurements.push_back(share);
}

std::vector<fs::path> program_dirs() {
  if (const char* dir = std::getenv("KILN_BENCH_DIR"); dir != nullptr && *dir != '\0') return {dir};
  const fs::path here = self_executable().parent_path();
  return {(here / ".." / "libexec" / "kiln" / "benchmarks").lexically_normal(), here};
}

// The Google Benchmark programs of each suite that has them.
const std::map<std::string, std::vector<std::string>> kPrograms = {
    {"ops", {"ops_benchmark"}},
    {"data", {"loader_benchmark", "preprocess_benchmark"}},
    {"gpu", {"ops_cuda_benchmark", "preprocess_cuda_benchmark"}}};

void check_suite(const std::string& suite, const SuiteOptions& options) {
  if (std::find(kSuites.begin(), kSuites.end(), suite) == kSuites.end())
    throw ConfigError(
        fmt::format("bench: unknown suite '{}' ({})", suite, fmt::join(kSuites, ", ")));
  if (suite == "train") {
    check_train(options);
  } else if (suite == "dist") {
    find_program(suite, "allreduce_benchmark");
  } else if (suite != "gpu" || !probe_devices().devices.empty()) {
    check_google_benchmarks(suite, kPrograms.at(suite), options);
  }
}

void run_suite(const std::string& suite, const SuiteOptions& options, BenchRecord& record) {
  if (suite == "ops" || suite == "data") {
    add_google_benchmarks(suite, kPrograms.at(suite), options, record);
  } else if (suite == "train") {
    train_suite(options, record);
  } else if (suite == "dist") {
    dist_suite(options, record);
  } else if (suite == "gpu") {
    const DeviceReport devices = probe_devices();
    if (devices.devices.empty()) {
      record.notes.push_back("gpu: skipped: no CUDA device (" + devices.why_none + ")");
      return;
    }
    add_google_benchmarks(suite, kPrograms.at(suite), options, record);
  } else {
    throw InternalError("bench: run_suite of unchecked suite '" + suite + "'");
  }
}

}  // namespace kiln::cli::bench
