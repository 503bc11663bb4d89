// Registry names that could escape their directory or that MLflow cannot read are
// refused with a ConfigError naming the field and the value, before anything is
// written.
#include <kiln/error.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/names.h>

#include <gtest/gtest.h>

#include <functional>

#include "registry/registry_test_support.h"

namespace kiln::registry {
namespace {
namespace fs = std::filesystem;
using ScratchDir = kiln::test::TempDir;
using testing::tree;
using Names = std::vector<std::string>;

// The message of the ConfigError `call` throws ("" if it throws none).
std::string config_error(const std::function<void()>& call) {
  try {
    call();
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(RegistryNames, ModelNames) {
  for (const std::string& good : Names{"fmnist-mlp", "model_v2", "a.b_c", ".hidden", "ünï"})
    EXPECT_NO_THROW(validate_model_name(good)) << good;
  for (const std::string& bad :
       Names{"", "a/b", "a/../b", "..", "../x", "..x", ".", "a\\b", "/abs", "a:b", "50%", "   ",
             "model v2", " lead", "trail ", std::string("a\0b", 3), "tab\there", "\xff\xfe"})
    EXPECT_NE(config_error([&] { validate_model_name(bad); }), "") << bad;
  EXPECT_EQ(config_error([] { validate_model_name("a/../b"); }),
            "registry: model name 'a/../b': must not contain '/' or '\\' nor be '.' or start "
            "with '..'");
  EXPECT_EQ(config_error([] { validate_model_name(std::string("a\0b", 3)); }),
            "registry: model name 'a\\x00b': must not contain NUL or other control characters");
  EXPECT_EQ(config_error([] { validate_model_name(""); }),
            "registry: model name '': must not be empty");
  EXPECT_EQ(config_error([] { validate_model_name("my model"); }),
            "registry: model name 'my model': must not contain spaces");
}

TEST(RegistryNames, Aliases) {
  for (const std::string& good :
       Names{"champion", "staging", "best_2024", "a-b", "v1x", "version1"})
    EXPECT_NO_THROW(validate_alias(good)) << good;
  for (const std::string& bad :
       Names{"", "a/b", "..", "../champion", "a b", "latest", "LATEST", "v1", "V22", "champ.ion"})
    EXPECT_NE(config_error([&] { validate_alias(bad); }), "") << bad;
  EXPECT_NE(config_error([] { validate_alias("../x"); }).find("alias '../x'"), std::string::npos);
}

TEST(RegistryNames, MetricParamTagKeys) {
  for (const std::string& good : Names{"loss", "loss/train", "optimizer.lr", "a b", "x-y_z", "a...",
                                       "a/.../b", ".hidden", "mlflow.parentRunId"})
    EXPECT_NO_THROW(validate_key("metric key", good)) << good;
  for (const std::string& bad :
       Names{"", "/abs", "a//b", "a/", "./a", "a/./b", "a/../b", "..", "../a", "..a", "...a", ".",
             "a:b", "a\\b", "a\nb", "é", std::string(251, 'k'), std::string("a\0b", 3)})
    EXPECT_NE(config_error([&] { validate_key("param key", bad); }), "") << bad;
  const std::string message = config_error([] { validate_key("tag key", "../etc/passwd"); });
  EXPECT_NE(message.find("tag key '../etc/passwd'"), std::string::npos) << message;
}

TEST(RegistryNames, ExperimentNamesAndIds) {
  for (const std::string& good : Names{"mnist", "Fashion MNIST / sweep 3", "a.b", "ünïcode"})
    EXPECT_NO_THROW(validate_experiment_name(good)) << good;
  for (const std::string& bad : Names{"", "/Users/x", "../up", "a/../b", "a//b", "..", "x\ny"})
    EXPECT_NE(config_error([&] { validate_experiment_name(bad); }), "") << bad;
  EXPECT_NO_THROW(validate_experiment_id("0"));
  EXPECT_NO_THROW(validate_experiment_id("466061630491038728"));
  for (const std::string& bad : Names{"", "..", "../0", "1/2", "-1", std::string(65, '1')})
    EXPECT_NE(config_error([&] { validate_experiment_id(bad); }), "") << bad;
  EXPECT_NO_THROW(validate_run_id("0123456789abcdef0123456789abcdef"));
  for (const std::string& bad : Names{"", "../x", "a/b", ".x"})
    EXPECT_NE(config_error([&] { validate_run_id(bad); }), "") << bad;
}

TEST(RegistryNames, Values) {
  EXPECT_NO_THROW(validate_value("param", "k", "ünï 日本", kMaxParamValueLength));
  EXPECT_NE(config_error([] { validate_value("param", "k", "\xc3\x28", 100); }), "");
  EXPECT_NE(config_error([] { validate_value("param", "k", "\xed\xa0\x80", 100); }),
            "");                                                                       // surrogate
  EXPECT_NE(config_error([] { validate_value("param", "k", "\xc0\xaf", 100); }), "");  // overlong
  EXPECT_NE(config_error([] { validate_value("param", "k", std::string("a\0", 2), 100); }), "");
  EXPECT_EQ(config_error([] { validate_value("param", "lr", std::string(7, 'x'), 6); }),
            "registry: param 'lr': value is 7 bytes long, MLflow allows at most 6");
}

// Every entry point validates before it writes: a refused call leaves the tree as
// it was, down to not creating mlruns/ at all.
TEST(RegistryNames, RefusedCallsWriteNothing) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  EXPECT_THROW(store.ensure_experiment("../escape"), ConfigError);
  EXPECT_THROW(store.ensure_experiment(""), ConfigError);
  EXPECT_THROW(store.create_model_version("a/../b", "", "file:///m", "", {}), ConfigError);
  EXPECT_THROW(store.create_model_version("..", "", "file:///m", "", {}), ConfigError);
  EXPECT_THROW(store.create_model_version("m", "../run", "file:///m", "", {}), ConfigError);
  EXPECT_THROW(store.create_model_version("m", "", "file:///m", "", {{"../t", "v"}}), ConfigError);
  EXPECT_THROW(store.create_model_version("m", "", "", "", {}), ConfigError);
  EXPECT_THROW(store.set_alias("m", "../champion", 1), ConfigError);
  EXPECT_THROW(store.start_run("../0", "r"), ConfigError);
  EXPECT_THROW(store.open_run("../../etc"), ConfigError);
  EXPECT_TRUE(tree(scratch.path()).empty());

  const std::string experiment = store.ensure_experiment("ok");
  auto run = store.start_run(experiment, "r");
  EXPECT_THROW(store.start_run(experiment, "r", {{"a/../../b", "v"}}), ConfigError);
  const auto before = tree(scratch.path());
  EXPECT_THROW(run->log_metric("../loss", 1.0, 0), ConfigError);
  EXPECT_THROW(run->log_metric("/abs", 1.0, 0), ConfigError);
  EXPECT_THROW(run->log_param("a/../../../x", "v"), ConfigError);
  EXPECT_THROW(run->log_param("", "v"), ConfigError);
  EXPECT_THROW(run->log_param("k", "\xff"), ConfigError);
  EXPECT_THROW(run->set_tag("x/..", "v"), ConfigError);
  EXPECT_THROW(run->set_tag("t", std::string(kMaxTagValueLength + 1, 'v')), ConfigError);
  EXPECT_THROW(store.create_model_version("a\\b", run->run_id(), "file:///m", "", {}), ConfigError);
  EXPECT_EQ(tree(scratch.path()), before);
}

}  // namespace
}  // namespace kiln::registry
