// step_cache_key: what enters the key and what does not.
#include <kiln/runner.h>

#include <gtest/gtest.h>

#include "support/support.h"

namespace kiln {
namespace {

class CacheKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    type_.name = "t";
    type_.params.optional("lr", ParamType::Float, 0.1, "")
        .optional("file", ParamType::Path, "", "");
    plugin_.name = "p";
    plugin_.version = "1.0";
    test::write_text(dir_ / "a.txt", "alpha");
    test::write_text(dir_ / "b.txt", "alpha");
    test::write_text(dir_ / "c.txt", "gamma");
  }
  std::string key(double lr, const std::string& file, const std::vector<Artifact>& inputs = {}) {
    PipelineStage stage;
    stage.name = "any";
    stage.type = &type_;
    stage.plugin = &plugin_;
    stage.params = Params("any", {{"lr", lr}, {"file", (dir_ / file).string()}}, {});
    return step_cache_key(stage, inputs);
  }
  StageType type_;
  PluginInfo plugin_;
  test::TempDir dir_;
};

TEST_F(CacheKeyTest, StableForTheSameInputs) {
  EXPECT_EQ(key(0.1, "a.txt"), key(0.1, "a.txt"));
  EXPECT_EQ(key(0.1, "a.txt").size(), 64u);
}

TEST_F(CacheKeyTest, ParametersEnter) { EXPECT_NE(key(0.1, "a.txt"), key(0.2, "a.txt")); }

TEST_F(CacheKeyTest, PathParametersEnterByContentNotName) {
  EXPECT_EQ(key(0.1, "a.txt"), key(0.1, "b.txt"));
  EXPECT_NE(key(0.1, "a.txt"), key(0.1, "c.txt"));
}

TEST_F(CacheKeyTest, PluginVersionAndTypeEnter) {
  const std::string before = key(0.1, "a.txt");
  plugin_.version = "1.1";
  EXPECT_NE(key(0.1, "a.txt"), before);
  plugin_.version = "1.0";
  type_.name = "u";
  EXPECT_NE(key(0.1, "a.txt"), before);
}

TEST_F(CacheKeyTest, InputContentIdsEnterButNotProducerNames) {
  Artifact input{.name = "dataset", .kind = "dataset", .content_id = "abc", .producer = "x"};
  const std::string with_input = key(0.1, "a.txt", {input});
  EXPECT_NE(with_input, key(0.1, "a.txt"));
  input.producer = "renamed";
  EXPECT_EQ(key(0.1, "a.txt", {input}), with_input);
  input.content_id = "abd";
  EXPECT_NE(key(0.1, "a.txt", {input}), with_input);
}

}  // namespace
}  // namespace kiln
