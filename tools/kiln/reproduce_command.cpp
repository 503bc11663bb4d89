// kiln reproduce RUN: runs a recorded run again in a scratch registry, from what it
// recorded, and compares what comes out with what it recorded (docs/cli.md).
//
// What the run recorded and the re-run uses: the resolved pipeline
// (artifacts/pipeline.yaml: parameters, overrides and seeds applied), the dataset
// versions its stages produced (their step-cache entries and files are copied into
// the scratch registry, so those stages are cached there), the train stage's thread
// count (kiln.threads.<stage>, as KILN_NUM_THREADS). What it compares: each stage's
// cache key, the weights of every model a stage emitted, and the history of every
// metric but the timing ones. Bit-identical is expected when the engine build, the
// plugins and the CPU model are the recorded ones; otherwise the results must stay
// within the tolerances below.
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/registry/browse.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/registry_root.h>
#include <kiln/safetensors.h>

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "commands.h"
#include "launcher.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;
namespace reg = kiln::registry;
using Json = nlohmann::json;

// Tolerances where bit-identity is not expected (another build, plugin or CPU):
// a weight may differ by this share of the tensor's largest magnitude, a metric's
// final value by this much times max(1, |value|).
constexpr double kWeightTolerance = 1e-2;
constexpr double kMetricTolerance = 1e-2;

struct ReproduceArguments {
  std::string run;
  fs::path scratch;
  bool keep = false;
};

std::map<std::string, std::string> tags_with_prefix(const std::map<std::string, std::string>& tags,
                                                    const std::string& prefix) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : tags)
    if (key.starts_with(prefix)) out[key.substr(prefix.size())] = value;
  return out;
}

// "ran <key>" or "cached <key>" (kiln.stage.<name>) -> <key>.
std::string key_of(const std::string& stage_tag) {
  const auto space = stage_tag.rfind(' ');
  return space == std::string::npos ? stage_tag : stage_tag.substr(space + 1);
}

// Throughput and durations differ from run to run by nature.
bool timing_metric(const std::string& key) {
  return key.ends_with("_ms") || key.ends_with("_s") || key.ends_with("seconds");
}

Json read_manifest(const fs::path& registry, const std::string& key) {
  const fs::path file = registry / "stages" / key / "manifest.json";
  if (!fs::exists(file)) return Json();
  try {
    return Json::parse(read_file(file));
  } catch (const Json::exception& error) {
    throw DataError(fmt::format("{}: not valid JSON: {}", file.string(), error.what()));
  }
}

// The registry-relative files of a manifest's outputs (dataset versions, models).
std::vector<fs::path> output_files(const Json& manifest) {
  std::vector<fs::path> files;
  for (const Json& output : manifest.value("outputs", Json::array()))
    if (const std::string path = output.value("path", ""); !path.empty()) files.emplace_back(path);
  return files;
}

// Copies the step-cache entry `key` and the files it refers to from one registry to
// another: the stage is then cached there, on the very same dataset versions.
// False when the entry is gone (the stage then runs again).
bool seed_stage(const fs::path& from, const fs::path& to, const std::string& key) {
  const Json manifest = read_manifest(from, key);
  if (manifest.is_null()) return false;
  fs::create_directories(to / "stages" / key);
  fs::copy(from / "stages" / key, to / "stages" / key,
           fs::copy_options::recursive | fs::copy_options::skip_existing);
  for (const fs::path& relative : output_files(manifest)) {
    reg::check_contained(from, from / relative);
    if (fs::exists(to / relative)) continue;  // in the stage's folder, or another stage's output
    fs::create_directories((to / relative).parent_path());
    std::error_code linked;
    fs::create_hard_link(from / relative, to / relative, linked);
    if (linked) fs::copy_file(from / relative, to / relative);
  }
  return true;
}

struct Comparison {
  std::vector<std::string> lines;
  int differing = 0;     // not bit-identical
  int out_of_range = 0;  // beyond the tolerances
  void add(std::string line) { lines.push_back(std::move(line)); }
  // A difference no tolerance covers.
  void mismatch(std::string line) {
    add(std::move(line));
    ++differing;
    ++out_of_range;
  }
};

void compare_weights(const std::string& stage, const fs::path& recorded, const fs::path& again,
                     Comparison& result) {
  const SafetensorsFile a = read_safetensors(recorded), b = read_safetensors(again);
  std::size_t identical = 0;
  double worst = 0;  // largest |difference| / largest |weight| over the tensors
  std::string worst_tensor;
  for (const StoredTensor& tensor : a.tensors) {
    const StoredTensor* other = b.find(tensor.name);
    if (other == nullptr || other->shape != tensor.shape || other->dtype != tensor.dtype) {
      result.mismatch(fmt::format("  stage {}: tensor {} is missing or reshaped in the re-run",
                                  stage, tensor.name));
      return;
    }
    if (other->bytes == tensor.bytes) {
      ++identical;
      continue;
    }
    if (tensor.dtype != DType::F32) {
      worst = INFINITY;
      worst_tensor = tensor.name;
      continue;
    }
    const auto count = tensor.bytes.size() / sizeof(float);
    std::vector<float> x(count), y(count);
    std::memcpy(x.data(), tensor.bytes.data(), tensor.bytes.size());
    std::memcpy(y.data(), other->bytes.data(), other->bytes.size());
    double largest = 0, difference = 0;
    for (std::size_t i = 0; i < count; ++i) {
      largest = std::max(largest, std::abs(static_cast<double>(x[i])));
      difference = std::max(difference, std::abs(static_cast<double>(x[i]) - y[i]));
    }
    const double share = largest > 0 ? difference / largest : difference;
    if (share >= worst) worst = share, worst_tensor = tensor.name;
  }
  if (identical == a.tensors.size()) {
    result.add(fmt::format("  stage {}: weights bit-identical ({} tensors)", stage, identical));
    return;
  }
  ++result.differing;
  const bool within = worst <= kWeightTolerance;
  if (!within) ++result.out_of_range;
  result.add(fmt::format(
      "  stage {}: weights differ in {} of {} tensors; largest |difference| is {:.3g} of the "
      "tensor's largest weight ({}), {} the tolerance {}",
      stage, a.tensors.size() - identical, a.tensors.size(), worst, worst_tensor,
      within ? "within" : "BEYOND", kWeightTolerance));
}

// `seeded`: the stages that the re-run found cached (the recorded dataset versions);
// their metrics (named "<stage>/...") are not logged again.
void compare_metrics(const reg::MlflowRun& recorded, const reg::MlflowRun& again,
                     const std::set<std::string>& seeded, Comparison& result) {
  std::vector<std::string> timing, cached;
  const auto final_again = again.latest_metrics();
  for (const auto& [key, last] : recorded.latest_metrics()) {
    if (timing_metric(key)) {
      timing.push_back(key);
      continue;
    }
    if (!final_again.contains(key) && seeded.contains(key.substr(0, key.find('/')))) {
      cached.push_back(key);
      continue;
    }
    const auto a = recorded.metric_history(key);
    const auto b =
        final_again.contains(key) ? again.metric_history(key) : std::vector<reg::MetricPoint>{};
    const bool same =
        a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](auto& x, auto& y) {
          return x.step == y.step && std::memcmp(&x.value, &y.value, sizeof x.value) == 0;
        });
    if (same) {
      result.add(fmt::format("  metric {}: bit-identical ({} point{})", key, a.size(),
                             a.size() == 1 ? "" : "s"));
      continue;
    }
    const auto found = final_again.find(key);
    if (found == final_again.end()) {
      result.mismatch(fmt::format("  metric {}: not logged by the re-run", key));
      continue;
    }
    ++result.differing;
    const double difference = std::abs(found->second.value - last.value);
    const double allowed = kMetricTolerance * std::max(1.0, std::abs(last.value));
    const bool within = difference <= allowed;
    if (!within) ++result.out_of_range;
    result.add(
        fmt::format("  metric {}: final {} recorded, {} now (|difference| {:.3g}, {} the "
                    "tolerance {:.3g})",
                    key, reg::metric_text(last.value), reg::metric_text(found->second.value),
                    difference, within ? "within" : "BEYOND", allowed));
  }
  if (!cached.empty())
    result.add(fmt::format("  metrics of stages cached on the recorded data, not logged again: {}",
                           fmt::join(cached, ", ")));
  if (!timing.empty())
    result.add(fmt::format("  timing metrics, not compared: {}", fmt::join(timing, ", ")));
}

// One stage of the recorded run (`recorded`, its manifest) against the re-run's
// (`again`): the cache keys, and the weights of every model it emitted.
void compare_stage(const std::string& stage, const Json& recorded, const Json& again,
                   const fs::path& registry, const fs::path& scratch_registry, Comparison& result) {
  if (recorded.is_null() || again.is_null()) return;  // an entry removed since
  // A model's content id includes its run id, so a stage reading a model has a new
  // key in every run; for the others a new key means a changed input or setting.
  const Json inputs = recorded.value("inputs", Json::array());
  const bool reads_a_model = std::any_of(inputs.begin(), inputs.end(), [](const Json& input) {
    return input.value("kind", "") == "model";
  });
  const std::string key = recorded.value("key", ""), key_again = again.value("key", "");
  if (key != key_again && !reads_a_model)
    result.add(
        fmt::format("  stage {}: cache key {} now, {} recorded (its inputs, parameters "
                    "or plugin changed)",
                    stage, key_again, key));
  for (const Json& output : recorded.value("outputs", Json::array())) {
    if (output.value("kind", "") != "model") continue;
    for (const Json& other : again.value("outputs", Json::array()))
      if (other.value("name", "") == output.value("name", ""))
        compare_weights(stage, registry / output.value("path", ""),
                        scratch_registry / other.value("path", ""), result);
  }
}

// Runs `argv` (this kiln) with `env` and returns its exit code. Its stdout (the
// stage table) goes to stderr, so that stdout holds the comparison alone. SIGINT
// and SIGTERM are passed on to it; it then stops as any `kiln run` does.
int run_again(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  ForwardSignals forward;
  const pid_t pid = spawn_self(argv, env, STDERR_FILENO);
  ForwardSignals::add(pid);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      throw InternalError(fmt::format("kiln reproduce: waitpid: {}", std::strerror(errno)));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int reproduce(const ReproduceArguments& arguments, const GlobalOptions& global) {
  const fs::path registry = fs::absolute(global.registry);
  reg::check_registry_root(registry, reg::RootAccess::Read);
  const reg::MlflowStore store(registry);
  const std::optional<reg::RunSummary> found = reg::find_run(store, arguments.run);
  if (!found)
    throw ConfigError(fmt::format("kiln reproduce: no run '{}' in registry {}", arguments.run,
                                  registry.string()));
  const auto recorded = store.open_run(arguments.run);
  const fs::path pipeline = recorded->directory() / "artifacts" / "pipeline.yaml";
  if (!fs::exists(pipeline))
    throw DataError(fmt::format("run {}: {} is missing, so the run cannot be reproduced",
                                arguments.run, pipeline.string()));
  const auto& tags = found->tags;
  const auto stages = tags_with_prefix(tags, "kiln.stage.");
  const auto datasets = tags_with_prefix(tags, "kiln.dataset.");
  for (const auto& [stage, id] : datasets)
    if (!fs::exists(registry / "datasets" / (id + ".h5")))
      throw DataError(fmt::format(
          "run {}: stage '{}' produced dataset version {}, which is no longer in registry {} "
          "(deleted?): the run cannot be reproduced",
          arguments.run, stage, id, registry.string()));

  const fs::path scratch = arguments.scratch.empty()
                               ? make_unique_directory(fs::temp_directory_path(), "kiln-reproduce-")
                               : fs::absolute(arguments.scratch);
  if (!arguments.scratch.empty()) {
    if (fs::exists(scratch) && !fs::is_empty(scratch))
      throw ConfigError(fmt::format("--scratch {}: not empty", scratch.string()));
    fs::create_directories(scratch);
  }
  const fs::path scratch_registry = scratch / "registry";
  std::set<std::string> seeded;
  for (const auto& [stage, tag] : stages)
    if (datasets.contains(stage) && seed_stage(registry, scratch_registry, key_of(tag)))
      seeded.insert(stage);
  fs::copy_file(pipeline, scratch / "pipeline.yaml");

  std::map<std::string, std::string> env = current_environment();
  const auto threads = tags_with_prefix(tags, "kiln.threads.");
  if (!threads.empty()) env["KILN_NUM_THREADS"] = threads.begin()->second;
  log::info("reproduce: run {} again in {} ({} threads)", arguments.run, scratch.string(),
            threads.empty() ? std::string("this machine's") : threads.begin()->second);
  const int code = run_again({"kiln", "--registry", scratch_registry.string(), "run",
                              (scratch / "pipeline.yaml").string()},
                             env);
  if (ForwardSignals::received() != 0)
    throw InterruptedError(
        fmt::format("reproduce: stopped by signal {}; the re-run's registry "
                    "stays in {}",
                    ForwardSignals::received(), scratch.string()));
  if (code != 0) {
    log::error("reproduce: the re-run failed (exit {}); its registry stays in {}", code,
               scratch.string());
    return code;
  }

  const reg::MlflowStore scratch_store(scratch_registry);
  const auto runs = reg::list_all_runs(scratch_store);
  if (runs.empty())
    throw StageError("reproduce: the re-run ran nothing that opened a run (every stage cached)");
  const auto again = scratch_store.open_run(runs.back().info.run_id);
  const auto again_tags = again->tags();

  Comparison result;
  const auto same = [&](const std::string& key) {
    const auto a = tags.find(key), b = again_tags.find(key);
    return a != tags.end() && b != again_tags.end() && a->second == b->second;
  };
  bool same_build = same("kiln.engine") && same("kiln.cpu");
  for (const auto& [plugin, version] : tags_with_prefix(tags, "kiln.plugin."))
    same_build = same_build && same("kiln.plugin." + plugin);
  for (const auto& [stage, tag] : stages) {
    const auto now = again_tags.find("kiln.stage." + stage);
    if (now == again_tags.end())
      result.mismatch(fmt::format("  stage {}: did not run again", stage));
    else
      compare_stage(stage, read_manifest(registry, key_of(tag)),
                    read_manifest(scratch_registry, key_of(now->second)), registry,
                    scratch_registry, result);
  }
  compare_metrics(*recorded, *again, seeded, result);

  fmt::print("run {} reproduced as run {} in {}\n", arguments.run, again->run_id(),
             scratch_registry.string());
  fmt::print("  {}: the recorded engine build, plugins and CPU model {}\n",
             same_build ? "bit-identical expected" : "tolerances apply",
             same_build ? "are the ones running" : "are not all the ones running");
  for (const std::string& line : result.lines) fmt::print("{}\n", line);
  const bool reproduced = same_build ? result.differing == 0 : result.out_of_range == 0;
  fmt::print("{}\n", result.differing == 0 ? "result: bit-identical"
                     : reproduced          ? "result: within tolerances"
                                           : "result: NOT reproduced");
  if (!arguments.keep && reproduced) fs::remove_all(scratch);
  return reproduced ? 0 : 4;
}

}  // namespace

void add_reproduce_command(CLI::App& app, const GlobalOptions& global) {
  auto arguments = std::make_shared<ReproduceArguments>();
  CLI::App* command = app.add_subcommand(
      "reproduce", "Run a recorded run again in a scratch registry and compare the results");
  command->add_option("run", arguments->run, "Run id")->required();
  command->add_option("--scratch", arguments->scratch,
                      "Empty directory for the re-run's registry (default: a new one under the "
                      "system's temporary directory)");
  command->add_flag("--keep", arguments->keep,
                    "Keep the scratch registry (it is kept anyway when the results differ)");
  command->callback([arguments, &global] {
    if (const int code = reproduce(*arguments, global); code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace kiln::cli
