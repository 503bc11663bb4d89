// Helpers of the registry and gate CLI tests: the synthetic pipeline with the
// champion gate, reading the registry with kiln's own store and with MLflow, a
// byte-exact snapshot of the registry ("nothing changed"), and a kiln process
// started in the background (for signals).
#pragma once

#include <kiln/registry/mlflow_store.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "cli_fixture.h"
#include "registry/registry_test_support.h"
#include "support/child_guard.h"

namespace kiln::test {

inline constexpr const char* kModel = "synthetic-mlp";

// evaluate gates on "beat the champion of synthetic-mlp"; a refused model is
// registered without moving the alias.
inline std::vector<std::string> champion_gate() {
  return {"evaluate.with.on_fail=register",
          "evaluate.with.beat_champion={model: synthetic-mlp, metric: accuracy, delta: 0.0}"};
}

// Every file under `root` with its contents, and every directory.
inline std::map<std::string, std::string> snapshot(const std::filesystem::path& root) {
  std::map<std::string, std::string> files;
  for (const std::string& path : registry::testing::tree(root))
    files[path] = std::filesystem::is_regular_file(root / path) ? read_text(root / path) : "<dir>";
  return files;
}

inline registry::ModelVersionInfo model_version(const std::filesystem::path& registry_root,
                                                std::int64_t version) {
  return registry::MlflowStore(registry_root).get_version(kModel, version);
}

inline std::optional<std::int64_t> champion(const std::filesystem::path& registry_root) {
  return registry::MlflowStore(registry_root).alias_version(kModel, "champion");
}

// Runs of the pipeline's experiment, oldest first.
inline std::vector<registry::RunInfo> pipeline_runs(const std::filesystem::path& registry_root) {
  registry::MlflowStore store(registry_root);
  const auto experiment = store.find_experiment("synthetic");
  return experiment ? store.list_runs(*experiment) : std::vector<registry::RunInfo>{};
}

// kiln with `args` in `cwd`, stderr to `err_file`, in the background, in its own
// process group (hold a ChildGuard on the pid).
inline pid_t spawn_kiln(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                        const std::filesystem::path& registry_root,
                        const std::filesystem::path& err_file) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    std::FILE* err = std::freopen(err_file.c_str(), "w", stderr);
    std::FILE* out = std::freopen("/dev/null", "w", stdout);
    if (err == nullptr || out == nullptr || ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::setenv("KILN_REGISTRY", registry_root.c_str(), 1);
    ::setenv("KILN_PLAIN_PROGRESS", "1", 1);
    ::setenv("KILN_PROGRESS_SECONDS", "0.05", 1);
    std::vector<std::string> argv = {std::string(KILN_BINARY_DIR) + "/bin/kiln"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> pointers;
    for (auto& arg : argv) pointers.push_back(arg.data());
    pointers.push_back(nullptr);
    ::execv(pointers[0], pointers.data());
    ::_exit(127);
  }
  return pid;
}

// Waits up to a minute for `done`.
template <class Predicate>
bool wait_for(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// "<ms> <value> <step>" lines of a kiln metric file, as numbers.
inline std::vector<std::array<double, 3>> metric_lines(const std::filesystem::path& file) {
  std::vector<std::array<double, 3>> points;
  for (const auto& line : lines_of(read_text(file))) {
    std::istringstream fields(line);
    std::array<double, 3> point{};
    fields >> point[0] >> point[1] >> point[2];
    points.push_back(point);
  }
  return points;
}

}  // namespace kiln::test
