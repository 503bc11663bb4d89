// Layout and file contents that MlflowStore writes, checked byte by byte where MLflow
// reads them (meta.yaml fields, metric lines, param/tag files, aliases).
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/registry/mlflow_store.h>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <regex>

#include "registry/registry_test_support.h"

namespace kiln::registry {
namespace {
namespace fs = std::filesystem;
using kiln::test::lines_of;
using ScratchDir = kiln::test::TempDir;
using testing::tree;

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

YAML::Node load_meta(const fs::path& dir) { return YAML::Load(read_file(dir / "meta.yaml")); }

TEST(MlflowStore, ConstructorAndReadsCreateNothing) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "registry";
  MlflowStore store(root);
  EXPECT_EQ(store.mlruns(), root / "mlruns");
  EXPECT_FALSE(store.find_experiment("mnist").has_value());
  EXPECT_TRUE(store.list_models().empty());
  EXPECT_THROW(store.open_run("0123456789abcdef0123456789abcdef"), ConfigError);
  EXPECT_THROW(store.list_runs("1"), ConfigError);
  EXPECT_FALSE(fs::exists(root));
}

TEST(MlflowStore, ExperimentLayoutMatchesMlflow) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  const std::int64_t before = now_ms();
  EXPECT_EQ(store.ensure_experiment("mnist"), "1");
  EXPECT_EQ(store.ensure_experiment("mnist"), "1");
  EXPECT_EQ(store.ensure_experiment("cifar"), "2");
  EXPECT_EQ(store.ensure_experiment("Default"), "0");
  EXPECT_EQ(store.find_experiment("cifar"), "2");

  const fs::path mlruns = scratch.path() / "mlruns";
  EXPECT_TRUE(fs::is_directory(mlruns / ".trash"));
  EXPECT_TRUE(fs::is_directory(mlruns / "models"));
  const YAML::Node default_meta = load_meta(mlruns / "0");
  EXPECT_EQ(default_meta["name"].as<std::string>(), "Default");
  EXPECT_EQ(default_meta["experiment_id"].as<std::string>(), "0");

  const std::string text = read_file(mlruns / "1" / "meta.yaml");
  // Ids are YAML strings, as MLflow writes them, not integers.
  EXPECT_NE(text.find("experiment_id: \"1\""), std::string::npos) << text;
  const YAML::Node meta = YAML::Load(text);
  EXPECT_EQ(meta["name"].as<std::string>(), "mnist");
  EXPECT_EQ(meta["lifecycle_stage"].as<std::string>(), "active");
  EXPECT_EQ(meta["artifact_location"].as<std::string>(), "file://" + (mlruns / "1").string());
  EXPECT_GE(meta["creation_time"].as<std::int64_t>(), before);
  EXPECT_LE(meta["creation_time"].as<std::int64_t>(), now_ms());
  EXPECT_EQ(meta["last_update_time"].as<std::int64_t>(), meta["creation_time"].as<std::int64_t>());
  // Nothing of kiln's own is left where MLflow looks: only lock files (not dirs).
  for (const auto& entry : fs::directory_iterator(mlruns)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory()) {
      EXPECT_TRUE(name == "0" || name == "1" || name == "2" || name == ".trash" || name == "models")
          << name;
    }
  }
}

TEST(MlflowStore, ArtifactLocationIsPercentEncoded) {
  ScratchDir scratch;
  MlflowStore store(scratch.path() / "my registry");
  const std::string id = store.ensure_experiment("e");
  const YAML::Node meta = load_meta(store.mlruns() / id);
  EXPECT_EQ(meta["artifact_location"].as<std::string>(),
            "file://" + scratch.path().string() + "/my%20registry/mlruns/" + id);
  // As Python's pathlib.Path("/a b/ü#1").as_uri() writes it.
  EXPECT_EQ(file_uri("/a b/\xc3\xbc#1"), "file:///a%20b/%C3%BC%231");
}

TEST(MlflowStore, RunLayoutParamsTagsAndEnd) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  const std::string experiment = store.ensure_experiment("mnist");
  const std::int64_t before = now_ms();
  auto run = store.start_run(experiment, "trial-3", {{"kiln.version", "0.1.0"}});
  const std::int64_t after = now_ms();

  EXPECT_TRUE(std::regex_match(run->run_id(), std::regex("[0-9a-f]{32}")));
  EXPECT_EQ(run->experiment_id(), experiment);
  const fs::path dir = store.mlruns() / experiment / run->run_id();
  EXPECT_EQ(run->directory(), dir);
  for (const char* sub : {"metrics", "params", "artifacts", "tags"})
    EXPECT_TRUE(fs::is_directory(dir / sub)) << sub;

  YAML::Node meta = load_meta(dir);
  EXPECT_EQ(meta["run_id"].as<std::string>(), run->run_id());
  EXPECT_EQ(meta["experiment_id"].as<std::string>(), experiment);
  EXPECT_EQ(meta["run_name"].as<std::string>(), "trial-3");
  EXPECT_EQ(meta["status"].as<int>(), 1);
  EXPECT_TRUE(meta["end_time"].IsNull());
  EXPECT_EQ(meta["lifecycle_stage"].as<std::string>(), "active");
  EXPECT_EQ(meta["artifact_uri"].as<std::string>(), "file://" + (dir / "artifacts").string());
  EXPECT_GE(meta["start_time"].as<std::int64_t>(), before);
  EXPECT_LE(meta["start_time"].as<std::int64_t>(), after);
  EXPECT_FALSE(meta["user_id"].as<std::string>().empty());

  EXPECT_EQ(read_file(dir / "tags" / "mlflow.runName"), "trial-3");
  EXPECT_EQ(read_file(dir / "tags" / "kiln.version"), "0.1.0");
  EXPECT_EQ(read_file(dir / "tags" / "mlflow.user"), meta["user_id"].as<std::string>());

  run->log_param("optimizer.lr", "0.001");
  run->log_param("model/layers", "784-256-10");
  run->set_tag("git.commit", "abc123");
  run->set_tag("git.commit", "def456");  // tags may change
  EXPECT_EQ(read_file(dir / "params" / "optimizer.lr"), "0.001");
  EXPECT_EQ(read_file(dir / "params" / "model" / "layers"), "784-256-10");
  EXPECT_EQ(read_file(dir / "tags" / "git.commit"), "def456");
  EXPECT_EQ(run->artifact_dir(), dir / "artifacts");

  run->end(RunStatus::Finished);
  meta = load_meta(dir);
  EXPECT_EQ(meta["status"].as<int>(), 3);
  EXPECT_GE(meta["end_time"].as<std::int64_t>(), meta["start_time"].as<std::int64_t>());
  const RunInfo info = run->info();
  EXPECT_EQ(info.status, RunStatus::Finished);
  EXPECT_EQ(info.run_name, "trial-3");
  EXPECT_TRUE(info.end_time_ms.has_value());
  // No temporary file is left anywhere in the run.
  for (const std::string& path : tree(dir)) EXPECT_EQ(path.find(".tmp"), std::string::npos) << path;
}

TEST(MlflowStore, MetricLinesAreTimestampValueStep) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  auto run = store.start_run(store.ensure_experiment("m"), "r");
  const std::int64_t before = now_ms();
  const std::vector<std::pair<double, std::string>> cases = {
      {0.1, "0.1"},        {-2.5, "-2.5"},
      {1e-5, "1e-05"},     {3.0, "3"},
      {NAN, "nan"},        {INFINITY, "inf"},
      {-INFINITY, "-inf"}, {0.30000000000000004, "0.30000000000000004"}};
  for (std::size_t i = 0; i < cases.size(); ++i)
    run->log_metric("loss/train", cases[i].first, static_cast<std::int64_t>(i) * 10);
  run->log_metric("lr", 0.5, -1);

  const auto lines = lines_of(read_file(run->directory() / "metrics" / "loss" / "train"));
  ASSERT_EQ(lines.size(), cases.size());
  const std::regex line_format(R"((\d{13}) (\S+) (-?\d+))");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::smatch match;
    ASSERT_TRUE(std::regex_match(lines[i], match, line_format)) << lines[i];
    EXPECT_GE(std::stoll(match[1]), before);
    EXPECT_EQ(match[2].str(), cases[i].second);
    EXPECT_EQ(std::stoll(match[3]), static_cast<std::int64_t>(i) * 10);
    if (std::isfinite(cases[i].first)) {
      EXPECT_EQ(std::strtod(match[2].str().c_str(), nullptr), cases[i].first);
    }
  }
  const auto lr = lines_of(read_file(run->directory() / "metrics" / "lr"));
  ASSERT_EQ(lr.size(), 1u);
  EXPECT_TRUE(lr[0].ends_with(" 0.5 -1")) << lr[0];
}

TEST(MlflowStore, ParamsAreImmutable) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  auto run = store.start_run(store.ensure_experiment("m"), "r");
  run->log_param("batch_size", "128");
  EXPECT_NO_THROW(run->log_param("batch_size", "128"));
  try {
    run->log_param("batch_size", "256");
    FAIL() << "changing a param must fail";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("batch_size"), std::string::npos) << message;
    EXPECT_NE(message.find("128"), std::string::npos) << message;
    EXPECT_NE(message.find("256"), std::string::npos) << message;
  }
  EXPECT_EQ(read_file(run->directory() / "params" / "batch_size"), "128");
}

TEST(MlflowStore, EndStatuses) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  const std::string experiment = store.ensure_experiment("m");
  const std::vector<std::pair<RunStatus, int>> statuses = {
      {RunStatus::Finished, 3}, {RunStatus::Failed, 4}, {RunStatus::Killed, 5}};
  for (const auto& [status, number] : statuses) {
    auto run = store.start_run(experiment, to_string(status));
    run->end(status);
    EXPECT_EQ(load_meta(run->directory())["status"].as<int>(), number);
    EXPECT_EQ(store.open_run(run->run_id())->info().status, status);
  }
  auto run = store.start_run(experiment, "still running");
  EXPECT_THROW(run->end(RunStatus::Running), ConfigError);
  EXPECT_THROW(run->end(RunStatus::Scheduled), ConfigError);
  EXPECT_EQ(load_meta(run->directory())["status"].as<int>(), 1);
  EXPECT_STREQ(to_string(RunStatus::Scheduled), "SCHEDULED");
}

TEST(MlflowStore, OpenListAndChildRuns) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  const std::string experiment = store.ensure_experiment("sweep");
  auto parent = store.start_run(experiment, "sweep");
  auto child =
      store.start_run(experiment, "trial-0", {{std::string(kParentRunTag), parent->run_id()}});
  child->end(RunStatus::Failed);

  auto reopened = store.open_run(child->run_id());
  EXPECT_EQ(reopened->directory(), child->directory());
  EXPECT_EQ(reopened->experiment_id(), experiment);
  reopened->log_metric("acc", 0.9, 1);
  EXPECT_TRUE(fs::exists(child->directory() / "metrics" / "acc"));

  const auto runs = store.list_runs(experiment);
  ASSERT_EQ(runs.size(), 2u);
  const RunInfo& first = runs[0].run_id == parent->run_id() ? runs[0] : runs[1];
  const RunInfo& second = runs[0].run_id == parent->run_id() ? runs[1] : runs[0];
  EXPECT_EQ(first.run_name, "sweep");
  EXPECT_EQ(first.status, RunStatus::Running);
  EXPECT_TRUE(first.parent_run_id.empty());
  EXPECT_EQ(second.run_id, child->run_id());
  EXPECT_EQ(second.status, RunStatus::Failed);
  EXPECT_EQ(second.parent_run_id, parent->run_id());
  EXPECT_TRUE(store.list_runs("0").empty());
  EXPECT_THROW(store.start_run("42", "r"), ConfigError);
}

TEST(MlflowStore, RunNameTagUpdatesMeta) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  auto run = store.start_run(store.ensure_experiment("m"), "");
  EXPECT_EQ(run->info().run_name, "run-" + run->run_id().substr(0, 8));
  run->set_tag("mlflow.runName", "renamed");
  EXPECT_EQ(load_meta(run->directory())["run_name"].as<std::string>(), "renamed");
  EXPECT_EQ(read_file(run->directory() / "tags" / "mlflow.runName"), "renamed");
}

TEST(MlflowStore, ModelVersionsAndAliases) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  auto run = store.start_run(store.ensure_experiment("m"), "r");
  const std::string source = "file://" + (run->directory() / "artifacts" / "model").string();
  EXPECT_EQ(store.create_model_version("fmnist-mlp", run->run_id(), source, "first",
                                       {{"accuracy", "0.89"}}),
            1);
  EXPECT_EQ(store.create_model_version("fmnist-mlp", run->run_id(), source, "", {}), 2);
  EXPECT_EQ(store.list_models(), std::vector<std::string>{"fmnist-mlp"});

  const fs::path model_dir = store.mlruns() / "models" / "fmnist-mlp";
  const YAML::Node model_meta = load_meta(model_dir);
  EXPECT_EQ(model_meta["name"].as<std::string>(), "fmnist-mlp");
  EXPECT_GE(model_meta["last_updated_timestamp"].as<std::int64_t>(),
            model_meta["creation_timestamp"].as<std::int64_t>());
  const YAML::Node version_meta = load_meta(model_dir / "version-1");
  EXPECT_EQ(version_meta["version"].as<int>(), 1);
  EXPECT_EQ(version_meta["name"].as<std::string>(), "fmnist-mlp");
  EXPECT_EQ(version_meta["source"].as<std::string>(), source);
  EXPECT_EQ(version_meta["storage_location"].as<std::string>(), source);
  EXPECT_EQ(version_meta["run_id"].as<std::string>(), run->run_id());
  EXPECT_EQ(version_meta["current_stage"].as<std::string>(), "None");
  EXPECT_EQ(version_meta["status"].as<std::string>(), "READY");
  EXPECT_EQ(version_meta["description"].as<std::string>(), "first");
  EXPECT_FALSE(version_meta["model_id"].IsDefined());
  EXPECT_EQ(read_file(model_dir / "version-1" / "tags" / "accuracy"), "0.89");

  EXPECT_FALSE(store.alias_version("fmnist-mlp", "champion").has_value());
  store.set_alias("fmnist-mlp", "champion", 1);
  store.set_alias("fmnist-mlp", "champion", 2);
  store.set_alias("fmnist-mlp", "staging", 1);
  EXPECT_EQ(read_file(model_dir / "aliases" / "champion"), "2");
  EXPECT_EQ(store.alias_version("fmnist-mlp", "champion"), 2);
  EXPECT_THROW(store.set_alias("fmnist-mlp", "champion", 3), ConfigError);
  EXPECT_THROW(store.set_alias("no-such-model", "champion", 1), ConfigError);
  EXPECT_EQ(store.alias_version("fmnist-mlp", "champion"), 2);

  const auto versions = store.list_versions("fmnist-mlp");
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].version, 1);
  EXPECT_EQ(versions[0].description, "first");
  EXPECT_EQ(versions[0].tags.at("accuracy"), "0.89");
  EXPECT_EQ(versions[0].aliases, std::vector<std::string>{"staging"});
  EXPECT_EQ(versions[1].version, 2);
  EXPECT_EQ(versions[1].aliases, std::vector<std::string>{"champion"});
  EXPECT_EQ(versions[1].run_id, run->run_id());
  EXPECT_THROW(store.list_versions("other"), ConfigError);
}

TEST(MlflowStore, VersionNumbersSkipDeletedAndForeignDirectories) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  EXPECT_EQ(store.create_model_version("m", "", "file:///models/m", "", {}), 1);
  // A version MLflow deleted keeps its directory and number; so does a stray one.
  fs::create_directories(store.mlruns() / "models" / "m" / "version-7");
  EXPECT_EQ(store.create_model_version("m", "", "file:///models/m", "", {}), 8);
  const auto versions = store.list_versions("m");
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[1].version, 8);
}

}  // namespace
}  // namespace kiln::registry
