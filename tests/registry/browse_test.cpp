// What `kiln registry` reads: model references, run contents, diffs, the weights
// of a version, and what counts as a registry root.
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/registry/browse.h>
#include <kiln/registry/registry_root.h>
#include <kiln/safetensors.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "registry/registry_test_support.h"

namespace kiln::registry {
namespace {
namespace fs = std::filesystem;
using ScratchDir = kiln::test::TempDir;
using ::testing::HasSubstr;

std::string config_error(const std::function<void()>& body) {
  try {
    body();
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(RegistryBrowse, ModelReferences) {
  const ModelRef plain = parse_model_ref("fmnist-mlp");
  EXPECT_EQ(plain.model, "fmnist-mlp");
  EXPECT_FALSE(plain.version.has_value());
  EXPECT_EQ(plain.alias, "");
  EXPECT_EQ(parse_model_ref("fmnist-mlp@12").version, 12);
  EXPECT_EQ(parse_model_ref("fmnist-mlp@champion").alias, "champion");
  EXPECT_EQ(config_error([] { parse_model_ref("m@0"); }),
            "registry: 'm@0': version numbers start at 1");
  EXPECT_THAT(config_error([] { parse_model_ref("a/b@1"); }), HasSubstr("model name 'a/b'"));
  EXPECT_THAT(config_error([] { parse_model_ref("m@../x"); }), HasSubstr("alias '../x'"));
  EXPECT_THAT(config_error([] { parse_model_ref("m@"); }),
              HasSubstr("alias '': must not be empty"));
  EXPECT_THAT(config_error([] { parse_model_ref("my model@1"); }), HasSubstr("spaces"));
}

TEST(RegistryBrowse, ResolvesVersionsAliasesAndLatest) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  for (int i = 0; i < 3; ++i) store.create_model_version("m", "", "file:///m", "", {});
  store.set_alias("m", "champion", 2);
  EXPECT_EQ(resolve_model_ref(store, parse_model_ref("m")).version, 3);
  EXPECT_EQ(resolve_model_ref(store, parse_model_ref("m@1")).version, 1);
  EXPECT_EQ(resolve_model_ref(store, parse_model_ref("m@champion")).version, 2);
  EXPECT_EQ(config_error([&] { resolve_model_ref(store, parse_model_ref("m@staging")); }),
            "registry: model 'm' has no alias 'staging'");
  EXPECT_EQ(config_error([&] { resolve_model_ref(store, parse_model_ref("m@7")); }),
            "registry: model 'm' has no version 7");
  EXPECT_THAT(config_error([&] { resolve_model_ref(store, parse_model_ref("x")); }),
              HasSubstr("registry: model name 'x': no such model"));
}

TEST(RegistryBrowse, RunContentsAndDiff) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  const std::string experiment = store.ensure_experiment("e");
  auto a = store.start_run(experiment, "a");
  auto b = store.start_run(experiment, "b");
  a->log_param("lr", "0.001");
  a->log_param("only/a", "x");
  b->log_param("lr", "0.002");
  for (int step = 0; step < 3; ++step) a->log_metric("loss", 1.0 / (step + 1), step);
  a->log_metric("loss", 5.0, 1);  // logged late for an earlier step: not the final value
  b->log_metric("loss", 0.25, 9);
  b->log_metric("acc", NAN, 0);
  write_file_atomic(a->artifact_dir() / "model" / "w.bin", "w");
  a->end(RunStatus::Finished);

  const RunSummary summary = summarize_run(store, a->run_id());
  EXPECT_EQ(summary.experiment_name, "e");
  EXPECT_EQ(summary.info.status, RunStatus::Finished);
  EXPECT_EQ(summary.params.at("only/a"), "x");
  EXPECT_EQ(summary.tags.at("mlflow.runName"), "a");
  EXPECT_EQ(summary.metrics.at("loss").step, 2);
  EXPECT_DOUBLE_EQ(summary.metrics.at("loss").value, 1.0 / 3);
  EXPECT_EQ(summary.artifacts, std::vector<std::string>{"model/w.bin"});
  EXPECT_EQ(a->metric_history("loss").size(), 4u);

  const RunDiff diff = diff_runs(store, a->run_id(), b->run_id());
  ASSERT_EQ(diff.params.size(), 2u);
  EXPECT_EQ(diff.params[0].key, "lr");
  EXPECT_EQ(diff.params[0].left, "0.001");
  EXPECT_EQ(diff.params[0].right, "0.002");
  EXPECT_TRUE(diff.params[0].differs());
  EXPECT_EQ(diff.params[1].key, "only/a");
  EXPECT_FALSE(diff.params[1].right.has_value());
  ASSERT_EQ(diff.metrics.size(), 2u);
  EXPECT_EQ(diff.metrics[0].key, "acc");
  EXPECT_EQ(diff.metrics[0].right, "nan");
  EXPECT_EQ(diff.metrics[1].right, "0.25");

  EXPECT_FALSE(find_run(store, "not-a-run").has_value());
  EXPECT_FALSE(find_run(store, "0123456789abcdef0123456789abcdef").has_value());
  EXPECT_TRUE(find_run(store, b->run_id()).has_value());
  ASSERT_EQ(list_all_runs(store).size(), 2u);
  EXPECT_EQ(list_all_runs(store)[0].experiment_name, "e");
}

TEST(RegistryBrowse, TornMetricLineIsADataErrorNamingTheFile) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  auto run = store.start_run(store.ensure_experiment("e"), "r");
  run->log_metric("loss", 1.0, 0);
  append_line(run->directory() / "metrics" / "loss", "17000 0.5");  // old format: step 0
  append_line(run->directory() / "metrics" / "loss", "17000 zero 1");
  try {
    run->metric_history("loss");
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("metrics/loss:3: not a metric line"));
  }
}

TEST(RegistryBrowse, WeightsOfAVersionAndAMalformedHeader) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  const fs::path model_dir = scratch.path() / "artifacts dir" / "model";
  const std::vector<float> weight(6, 0.5f), bias(2, 0.0f);
  fs::create_directories(model_dir);
  write_safetensors(model_dir / "model.safetensors",
                    {{"layers.0.weight", DType::F32, {2, 3}, weight.data()},
                     {"layers.0.bias", DType::F32, {2}, bias.data()}},
                    {{"kiln.model", "{}"}});
  store.create_model_version("m", "", file_uri(model_dir), "", {});
  store.create_model_version("m", "", "runs:/abc/model", "", {});
  EXPECT_EQ(path_of_file_uri(file_uri(model_dir)), model_dir);

  const auto weights = read_model_weights(store.get_version("m", 1));
  ASSERT_TRUE(weights.has_value());
  ASSERT_EQ(weights->contents.tensors.size(), 2u);
  EXPECT_EQ(weights->contents.tensors[0].shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_FALSE(read_model_weights(store.get_version("m", 2)).has_value());

  // A header length of 2^40: refused before anything of that size is allocated.
  std::string bytes = read_file(model_dir / "model.safetensors");
  bytes.replace(0, 8, std::string("\x00\x00\x00\x00\x00\x01\x00\x00", 8));
  write_file_atomic(model_dir / "model.safetensors", bytes);
  try {
    read_model_weights(store.get_version("m", 1));
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr((model_dir / "model.safetensors").string() +
                                        ": header length 1099511627776 exceeds the limit"));
  }
}

TEST(RegistryRoot, WhatIsARegistry) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "r";
  EXPECT_NO_THROW(check_registry_root(root, RootAccess::Write));  // kiln run creates it
  EXPECT_THAT(config_error([&] { check_registry_root(root, RootAccess::Read); }),
              HasSubstr("no such directory"));
  fs::create_directories(root);
  EXPECT_NO_THROW(check_registry_root(root, RootAccess::Write));
  EXPECT_NO_THROW(check_registry_root(root, RootAccess::Read));
  write_file_atomic(root / "notes.txt", "mine");
  EXPECT_THAT(config_error([&] { check_registry_root(root, RootAccess::Write); }),
              HasSubstr("not a kiln registry: the directory is not empty and has none of"));
  fs::create_directories(root / "datasets");
  EXPECT_NO_THROW(check_registry_root(root, RootAccess::Read));
  EXPECT_EQ(config_error([&] { check_registry_root(root / "notes.txt", RootAccess::Write); }),
            "registry " + (root / "notes.txt").string() + ": not a directory");
}

}  // namespace
}  // namespace kiln::registry
