// Several processes writing one registry (sweep workers, concurrent pipelines):
// nothing lost, nothing duplicated, and a writer killed at any instant leaves a store
// that kiln and MLflow still read.
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/registry/mlflow_store.h>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <functional>
#include <regex>
#include <set>
#include <thread>

#include "registry/registry_test_support.h"
#include "support/child_guard.h"

namespace kiln::registry {
namespace {
namespace fs = std::filesystem;
using kiln::test::lines_of;
using ScratchDir = kiln::test::TempDir;
using testing::tree;

constexpr int kProcesses = 8;
constexpr int kVersionsEach = 5;
constexpr int kMetricsEach = 200;

// Runs `body` in a forked child; the child reports failure through its exit code
// (gtest assertions do not cross fork).
pid_t fork_child(const std::function<void()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    int code = 0;
    try {
      body();
    } catch (const std::exception& error) {
      std::fprintf(stderr, "child %d: %s\n", ::getpid(), error.what());
      code = 1;
    }
    std::fflush(stderr);
    ::_exit(code);
  }
  return pid;
}

// Each child is killed and reaped if an assertion ends the test before it is.
std::vector<kiln::test::ChildGuard> guard(const std::vector<pid_t>& children) {
  std::vector<kiln::test::ChildGuard> guards;
  for (const pid_t pid : children) guards.emplace_back(pid);
  return guards;
}

void expect_children_succeed(const std::vector<pid_t>& children) {
  const auto guards = guard(children);
  for (const pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child " << pid << " failed";
  }
}

TEST(RegistryConcurrency, ProcessesShareVersionsExperimentsAndMetrics) {
  ScratchDir scratch;
  const fs::path root = scratch.path();
  std::string run_id;
  {
    MlflowStore store(root);
    run_id = store.start_run(store.ensure_experiment("shared"), "shared-run")->run_id();
  }
  std::vector<pid_t> children;
  for (int worker = 0; worker < kProcesses; ++worker) {
    children.push_back(fork_child([&, worker] {
      MlflowStore store(root);  // each process has its own store, as separate programs do
      auto run = store.open_run(run_id);
      if (store.ensure_experiment("created-concurrently").empty()) throw InternalError("no id");
      for (int i = 0; i < kMetricsEach; ++i) {
        run->log_metric("loss/worker", worker * 1000.0 + i, i);
        if (i % (kMetricsEach / kVersionsEach) == 0)
          store.create_model_version("shared-model", run_id, "file:///m", "", {});
      }
      run->log_param("dataset", "fashion-mnist");  // same value from everyone: fine
    }));
  }
  expect_children_succeed(children);

  MlflowStore store(root);
  std::set<std::int64_t> numbers;
  for (const auto& version : store.list_versions("shared-model")) numbers.insert(version.version);
  EXPECT_EQ(numbers.size(), static_cast<std::size_t>(kProcesses * kVersionsEach));
  EXPECT_EQ(*numbers.begin(), 1);
  EXPECT_EQ(*numbers.rbegin(), kProcesses * kVersionsEach);  // no gaps, no duplicates

  // One experiment of that name, whoever created it.
  const auto experiment = store.find_experiment("created-concurrently");
  ASSERT_TRUE(experiment.has_value());
  int with_name = 0;
  for (const auto& entry : fs::directory_iterator(store.mlruns())) {
    const fs::path meta = entry.path() / "meta.yaml";
    if (fs::exists(meta) &&
        YAML::LoadFile(meta)["name"].as<std::string>() == "created-concurrently")
      ++with_name;
  }
  EXPECT_EQ(with_name, 1);

  const fs::path metric = store.open_run(run_id)->directory() / "metrics" / "loss" / "worker";
  const auto lines = lines_of(read_file(metric));
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kProcesses * kMetricsEach));
  const std::regex line_format(R"(\d{13} (\d+)(\.0)? (\d+))");
  std::set<std::string> seen;
  for (const std::string& line : lines) {
    std::smatch match;
    ASSERT_TRUE(std::regex_match(line, match, line_format)) << "torn line: " << line;
    const long value = std::stol(match[1]);
    EXPECT_EQ(value % 1000, std::stol(match[3])) << line;
    seen.insert(match[1]);
  }
  EXPECT_EQ(seen.size(), lines.size());  // every (worker, step) exactly once
}

// Acceptance 2 of issue 5: 8 processes at once, each logging 2,000 metric points to
// its own run and registering a version of the same model. Exactly 8 new versions
// (no gap, no duplicate), every metric line present and parseable, no temporary
// file left anywhere under the registry, and MLflow reads it all.
TEST(RegistryConcurrency, EightRunsLogAndRegisterOneModelAtOnce) {
  constexpr int kRuns = 8, kPoints = 2000;
  ScratchDir scratch;
  const fs::path root = scratch.path();
  std::string experiment;
  {
    MlflowStore store(root);
    experiment = store.ensure_experiment("stress");
    store.create_model_version("stressed", "", "file:///before", "", {});  // version 1
  }
  const fs::path ids = root / "run-ids";
  std::vector<pid_t> children;
  for (int worker = 0; worker < kRuns; ++worker) {
    children.push_back(fork_child([&, worker] {
      MlflowStore store(root);
      auto run = store.start_run(experiment, "worker-" + std::to_string(worker));
      append_line(ids, run->run_id());
      for (int step = 0; step < kPoints; ++step)
        run->log_metric("train/loss", worker + step / 10000.0, step);
      store.create_model_version("stressed", run->run_id(), "file:///m", "",
                                 {{"worker", std::to_string(worker)}});
      run->end(RunStatus::Finished);
    }));
  }
  expect_children_succeed(children);

  MlflowStore store(root);
  std::vector<std::int64_t> numbers;
  std::set<std::string> registered_by;
  for (const auto& version : store.list_versions("stressed")) {
    numbers.push_back(version.version);
    if (version.version > 1) registered_by.insert(version.run_id);
  }
  EXPECT_EQ(numbers, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  const auto run_ids = lines_of(read_file(ids));
  ASSERT_EQ(run_ids.size(), static_cast<std::size_t>(kRuns));
  EXPECT_EQ(registered_by, std::set<std::string>(run_ids.begin(), run_ids.end()));

  const std::regex line_format(R"(\d{13} [0-9.e-]+ (\d+))");
  for (const std::string& run_id : run_ids) {
    const auto run = store.open_run(run_id);
    const auto lines = lines_of(read_file(run->directory() / "metrics" / "train" / "loss"));
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(kPoints)) << run_id;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      std::smatch match;
      ASSERT_TRUE(std::regex_match(lines[i], match, line_format)) << "torn line: " << lines[i];
      EXPECT_EQ(std::stoul(match[1]), i);
    }
    EXPECT_EQ(run->metric_history("train/loss").size(), static_cast<std::size_t>(kPoints));
    EXPECT_EQ(run->info().status, RunStatus::Finished);
  }
  for (const std::string& path : tree(root)) {
    EXPECT_EQ(path.find(".tmp"), std::string::npos) << path;
    EXPECT_FALSE(path.starts_with(".mlruns-staging/")) << "left in staging: " << path;
  }
  const auto view = testing::run_mlflow_reader({"scan", store.mlruns().string()});
  if (view.skip_reason.empty()) {
    EXPECT_EQ(view.summary.value("runs", -1), kRuns) << view.summary;
    EXPECT_EQ(view.summary.value("metric_points", -1), kRuns * kPoints) << view.summary;
    EXPECT_EQ(view.summary.value("versions", -1), kRuns + 1) << view.summary;
  }
}

// Two processes race to log different values for one param: exactly one wins.
TEST(RegistryConcurrency, ParamImmutabilityHoldsAcrossProcesses) {
  ScratchDir scratch;
  std::string run_id;
  {
    MlflowStore store(scratch.path());
    run_id = store.start_run(store.ensure_experiment("e"), "r")->run_id();
  }
  std::vector<pid_t> children;
  for (int worker = 0; worker < kProcesses; ++worker) {
    children.push_back(::fork());
    if (children.back() == 0) {
      ::setpgid(0, 0);
      int code = 0;
      try {
        MlflowStore(scratch.path()).open_run(run_id)->log_param("seed", std::to_string(worker));
      } catch (const ConfigError&) {
        code = 10;  // lost the race: expected for all but one
      } catch (...) {
        code = 1;
      }
      ::_exit(code);
    }
  }
  const auto guards = guard(children);
  int winners = 0;
  for (const pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_TRUE(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 10);
    if (WEXITSTATUS(status) == 0) ++winners;
  }
  EXPECT_EQ(winners, 1);
}

// A writer SIGKILLed at arbitrary moments never leaves a meta.yaml that does not
// parse, nor a directory that readers take for a run, model or version half-made.
TEST(RegistryConcurrency, KilledWriterLeavesReadableStore) {
  ScratchDir scratch;
  const fs::path root = scratch.path();
  for (int attempt = 0; attempt < 4; ++attempt) {
    const pid_t pid = fork_child([&] {
      MlflowStore store(root);
      const std::string experiment = store.ensure_experiment("crash");
      for (int i = 0;; ++i) {
        auto run = store.start_run(experiment, "r");
        run->log_param("i", std::to_string(i));
        run->log_metric("m", i, i);
        run->end(RunStatus::Finished);
        store.create_model_version("crash-model", run->run_id(), "file:///m", "", {});
        store.set_alias("crash-model", "champion", 1);
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(120 + 90 * attempt));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  MlflowStore store(root);
  const auto experiment = store.find_experiment("crash");
  ASSERT_TRUE(experiment.has_value());
  const auto runs = store.list_runs(*experiment);
  EXPECT_FALSE(runs.empty());
  for (const auto& run : runs) EXPECT_EQ(run.experiment_id, *experiment);
  const auto versions = store.list_versions("crash-model");
  EXPECT_FALSE(versions.empty());
  // Every meta.yaml in mlruns parses; no temporary file sits inside mlruns.
  for (const std::string& path : tree(store.mlruns())) {
    EXPECT_EQ(path.find(".tmp"), std::string::npos) << path;
    if (path.ends_with("meta.yaml")) {
      EXPECT_NO_THROW(YAML::LoadFile((store.mlruns() / path).string())) << path;
      EXPECT_TRUE(YAML::LoadFile((store.mlruns() / path).string()).IsMap()) << path;
    }
  }
  // Each version directory has its meta.yaml (MLflow fails on one without).
  for (const auto& entry : fs::directory_iterator(store.mlruns() / "models" / "crash-model"))
    if (entry.is_directory() && entry.path().filename().string().starts_with("version-")) {
      EXPECT_TRUE(fs::exists(entry.path() / "meta.yaml")) << entry.path();
    }
  // MLflow reads all of it too.
  const auto view = testing::run_mlflow_reader({"scan", store.mlruns().string()});
  if (view.skip_reason.empty()) {
    EXPECT_EQ(view.summary.value("runs", -1), static_cast<int>(runs.size())) << view.summary;
    EXPECT_EQ(view.summary.value("versions", -1), static_cast<int>(versions.size()))
        << view.summary;
  }
  // Writing goes on after the crash.
  EXPECT_EQ(store.create_model_version("crash-model", "", "file:///m", "", {}),
            versions.back().version + 1);
}

}  // namespace
}  // namespace kiln::registry
