// Helpers of the `kiln run --nproc N` tests: the trained model of a registry and
// the largest weight difference between two models, the tracking runs' statuses,
// and a launcher run in the background (stdout and stderr in files) that a test
// can watch, signal and wait for with a hang guard.
#pragma once

#include <kiln/registry/browse.h>
#include <kiln/safetensors.h>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "cli/cli_fixture.h"
#include "support/child_guard.h"

namespace kiln::test {

// The committed model of the train stage in `registry`.
inline std::filesystem::path trained_model(const std::filesystem::path& registry) {
  for (const auto& entry : std::filesystem::directory_iterator(registry / "stages"))
    if (std::filesystem::exists(entry.path() / "model.safetensors"))
      return entry.path() / "model.safetensors";
  ADD_FAILURE() << "no model in " << registry;
  return {};
}

// The train stage's checkpoint in the registry's resume directories, if any.
inline std::optional<std::filesystem::path> checkpoint_file(const std::filesystem::path& registry) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(registry / "stages" / ".resume", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->path().filename() == "checkpoint.safetensors") return it->path();
  return std::nullopt;
}

inline std::vector<float> floats(const StoredTensor& tensor) {
  std::vector<float> values(tensor.bytes.size() / sizeof(float));
  std::memcpy(values.data(), tensor.bytes.data(), values.size() * sizeof(float));
  return values;
}

// Absolute differences between the float32 tensors of two models (same names,
// same order), element by element.
inline std::vector<double> weight_differences(const std::filesystem::path& a,
                                              const std::filesystem::path& b) {
  const SafetensorsFile left = read_safetensors(a), right = read_safetensors(b);
  std::vector<double> differences;
  EXPECT_EQ(left.tensors.size(), right.tensors.size());
  for (std::size_t t = 0; t < std::min(left.tensors.size(), right.tensors.size()); ++t) {
    EXPECT_EQ(left.tensors[t].name, right.tensors[t].name);
    const auto x = floats(left.tensors[t]), y = floats(right.tensors[t]);
    EXPECT_EQ(x.size(), y.size()) << left.tensors[t].name;
    for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i)
      differences.push_back(std::abs(static_cast<double>(x[i]) - y[i]));
  }
  return differences;
}

// The largest of them.
inline double max_weight_difference(const std::filesystem::path& a,
                                    const std::filesystem::path& b) {
  const auto differences = weight_differences(a, b);
  return differences.empty() ? 0 : *std::max_element(differences.begin(), differences.end());
}

// Their median.
inline double median_weight_difference(const std::filesystem::path& a,
                                       const std::filesystem::path& b) {
  auto differences = weight_differences(a, b);
  if (differences.empty()) return 0;
  auto middle = differences.begin() + static_cast<std::ptrdiff_t>(differences.size() / 2);
  std::nth_element(differences.begin(), middle, differences.end());
  return *middle;
}

// The final value of metric `key` ("eval/accuracy") of the newest run in `registry`.
inline double final_metric(const std::filesystem::path& registry, const std::string& key) {
  const registry::MlflowStore store(registry);
  const auto runs = registry::list_all_runs(store);
  if (runs.empty()) {
    ADD_FAILURE() << "no run in " << registry;
    return 0;
  }
  const auto metrics = store.open_run(runs.back().info.run_id)->latest_metrics();
  const auto found = metrics.find(key);
  if (found == metrics.end()) {
    ADD_FAILURE() << "no metric " << key << " in " << registry;
    return 0;
  }
  return found->second.value;
}

// The "status: N" of every tracking run in the registry (MLflow: 3 FINISHED,
// 4 FAILED, 5 KILLED).
inline std::vector<int> run_statuses(const std::filesystem::path& registry) {
  namespace fs = std::filesystem;
  std::vector<int> statuses;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(registry / "mlruns", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() != "meta.yaml" ||
        it->path().parent_path().parent_path().filename() == "mlruns")
      continue;
    std::smatch match;
    const std::string text = read_text(it->path());
    if (std::regex_search(text, match, std::regex("\nstatus: ([0-9]+)")))
      statuses.push_back(std::stoi(match[1]));
  }
  return statuses;
}

// A launcher running in the background, its stdout and stderr in files.
// Killed with its ranks (its process group) if the test ends before it does.
struct Background {
  pid_t pid = -1;
  std::filesystem::path out, err;
  ChildGuard guard{-1};
};

class DistCliTest : public CliTest {
 protected:
  using Clock = std::chrono::steady_clock;

  CommandResult kiln_in(const std::filesystem::path& registry, std::vector<std::string> args,
                        std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), std::string(KILN_BINARY_DIR) + "/bin/kiln");
    env["KILN_REGISTRY"] = registry.string();
    env["KILN_PLAIN_PROGRESS"] = "1";
    return run_command(args, env, dir_.path());
  }

  // Starts kiln with `args` in the test directory; its output goes to
  // <name>.out and <name>.err there.
  Background start(std::vector<std::string> args, std::map<std::string, std::string> env,
                   const std::string& name = "launcher") {
    args.insert(args.begin(), std::string(KILN_BINARY_DIR) + "/bin/kiln");
    const auto out_file = dir_ / (name + ".out"), err_file = dir_ / (name + ".err");
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(err, STDERR_FILENO);
      ::dup2(out, STDOUT_FILENO);
      for (const auto& [key, value] : env) ::setenv(key.c_str(), value.c_str(), 1);
      if (::chdir(dir_.path().c_str()) != 0) ::_exit(126);
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return Background{pid, out_file, err_file, ChildGuard(pid)};
  }

  // Waits until stderr matches `pattern`; returns the first match's group 1.
  std::string wait_for(const Background& job, const std::string& pattern, double seconds = 60) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    std::smatch match;
    while (Clock::now() < deadline) {
      const std::string text = std::filesystem::exists(job.err) ? read_text(job.err) : "";
      if (std::regex_search(text, match, std::regex(pattern))) return match[1];
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "no '" << pattern << "' in:\n" << read_text(job.err);
    return {};
  }

  // The launcher's exit code (128 + signal when killed). A hang guard only: past
  // `seconds` the launcher and the ranks it named are killed and the test fails.
  int finish(const Background& job, double seconds = 300) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    while (::waitpid(job.pid, &status, WNOHANG) == 0) {
      if (Clock::now() >= deadline) {
        ADD_FAILURE() << "kiln did not finish within " << seconds << " s:\n" << read_text(job.err);
        std::smatch match;
        const std::string err = read_text(job.err);
        if (std::regex_search(err, match,
                              std::regex("launched [0-9]+ ranks \\(pids ([0-9 ]+)\\)"))) {
          std::istringstream pids(match[1]);
          for (pid_t rank; pids >> rank;) ::kill(rank, SIGKILL);
        }
        ::kill(job.pid, SIGKILL);
        ::waitpid(job.pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

}  // namespace kiln::test
