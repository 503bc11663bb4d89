// Alias history and rollback: every alias move kiln makes is appended to
// models/<name>/.kiln-alias-history, and rollback walks it back one move at a time.
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/registry/mlflow_store.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "registry/registry_test_support.h"

namespace kiln::registry {
namespace {
namespace fs = std::filesystem;
using kiln::test::lines_of;
using ScratchDir = kiln::test::TempDir;
using testing::tree;

class AliasHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 4; ++i) store_.create_model_version("m", "", "file:///models/m", "", {});
  }
  fs::path model_dir() const { return store_.mlruns() / "models" / "m"; }
  // The whole tree with file contents: "nothing changed" down to the bytes.
  std::map<std::string, std::string> snapshot() const {
    std::map<std::string, std::string> files;
    for (const std::string& path : tree(scratch_.path()))
      if (fs::is_regular_file(scratch_.path() / path))
        files[path] = read_file(scratch_.path() / path);
    return files;
  }

  ScratchDir scratch_;
  MlflowStore store_{scratch_.path()};
};

TEST_F(AliasHistoryTest, RollbackUndoesOneMoveAtATime) {
  store_.set_alias("m", "champion", 1);
  store_.set_alias("m", "champion", 2);
  store_.set_alias("m", "staging", 4);
  store_.set_alias("m", "champion", 3);
  EXPECT_EQ(store_.rollback_alias("m", "champion"), 2);
  EXPECT_EQ(read_file(model_dir() / "aliases" / "champion"), "2");
  EXPECT_EQ(store_.rollback_alias("m", "champion"), 1);
  EXPECT_EQ(store_.alias_version("m", "staging"), 4);  // another alias is its own history
  const auto before = snapshot();
  try {
    store_.rollback_alias("m", "champion");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& error) {
    EXPECT_STREQ(error.what(),
                 "registry: model 'm' alias 'champion': no earlier version to roll back to (it "
                 "points at version 1, the first it held)");
  }
  EXPECT_EQ(snapshot(), before);
  // A new move after rollbacks is undone by the next rollback.
  store_.set_alias("m", "champion", 4);
  EXPECT_EQ(store_.rollback_alias("m", "champion"), 1);
}

TEST_F(AliasHistoryTest, HistoryFileIsOneJsonObjectPerMove) {
  store_.set_alias("m", "champion", 1);
  store_.set_alias("m", "champion", 2);
  store_.rollback_alias("m", "champion");
  const auto lines = lines_of(read_file(model_dir() / ".kiln-alias-history"));
  ASSERT_EQ(lines.size(), 3u);
  const auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["alias"], "champion");
  EXPECT_EQ(first["action"], "set");
  EXPECT_EQ(first["version"], 1);
  EXPECT_TRUE(first["previous"].is_null());
  EXPECT_TRUE(first["time"].is_number_integer());
  EXPECT_TRUE(first["user"].is_string());
  const auto last = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(last["action"], "rollback");
  EXPECT_EQ(last["version"], 1);
  EXPECT_EQ(last["previous"], 2);
  const auto history = store_.alias_history("m");
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[1].previous, 1);
  EXPECT_EQ(history[2].action, "rollback");
}

// MLflow (or a person) moved the alias without kiln: rollback returns to the
// version that held it before that move, which is the last one kiln recorded.
TEST_F(AliasHistoryTest, MoveByAnotherToolIsRolledBackToo) {
  store_.set_alias("m", "champion", 1);
  store_.set_alias("m", "champion", 2);
  write_file_atomic(model_dir() / "aliases" / "champion", "3");
  EXPECT_EQ(store_.rollback_alias("m", "champion"), 2);
  EXPECT_EQ(store_.rollback_alias("m", "champion"), 1);
  // A deleted alias comes back to where it last pointed.
  fs::remove(model_dir() / "aliases" / "champion");
  EXPECT_EQ(store_.rollback_alias("m", "champion"), 1);
}

TEST_F(AliasHistoryTest, RefusalsChangeNothing) {
  store_.set_alias("m", "champion", 1);
  store_.set_alias("m", "champion", 2);
  // Version 1 deleted by MLflow: its directory stays with a marker stage.
  const fs::path meta = model_dir() / "version-1" / "meta.yaml";
  std::string text = read_file(meta);
  text.replace(text.find("current_stage: \"None\""), 21, "current_stage: \"Deleted_Internal\"");
  write_file_atomic(meta, text);
  const auto before = snapshot();
  EXPECT_THROW(store_.rollback_alias("m", "champion"), ConfigError);
  EXPECT_THROW(store_.rollback_alias("m", "staging"), ConfigError);  // never set
  EXPECT_THROW(store_.rollback_alias("nope", "champion"), ConfigError);
  EXPECT_THROW(store_.rollback_alias("m", "bad alias"), ConfigError);
  EXPECT_THROW(store_.set_alias("m", "champion", 9), ConfigError);
  EXPECT_THROW(store_.set_alias("m", "champion", 1), ConfigError);  // deleted
  EXPECT_THROW(store_.set_alias("a b", "champion", 1), ConfigError);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(AliasHistoryTest, MalformedLinesAreSkipped) {
  store_.set_alias("m", "champion", 1);
  append_line(model_dir() / ".kiln-alias-history", "{\"time\": 1, \"alias\": ");
  store_.set_alias("m", "champion", 2);
  EXPECT_EQ(store_.alias_history("m").size(), 2u);
  EXPECT_EQ(store_.rollback_alias("m", "champion"), 1);
}

TEST_F(AliasHistoryTest, MlflowReadsAModelWithAHistory) {
  store_.set_alias("m", "champion", 1);
  store_.set_alias("m", "champion", 2);
  store_.rollback_alias("m", "champion");
  const auto view = testing::run_mlflow_reader({"scan", store_.mlruns().string()});
  if (!view.skip_reason.empty()) GTEST_FAIL() << view.skip_reason;
  EXPECT_EQ(view.summary.value("versions", -1), 4);
  EXPECT_EQ(view.summary.value("aliases", -1), 1);
}

}  // namespace
}  // namespace kiln::registry
