// parse_pipeline: syntax, keys, references, cycles and overrides, each error
// with its file:line:col.
#include <kiln/error.h>
#include <kiln/pipeline.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/support.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

class ParseTest : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& text) {
    const auto file = dir_ / "p.yaml";
    test::write_text(file, text);
    return file;
  }
  std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
    try {
      parse_pipeline(write(text), overrides);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  }
  test::TempDir dir_;
};

TEST_F(ParseTest, ReadsStagesNeedsAndName) {
  const auto source = parse_pipeline(write(
      "name: demo\nstages:\n  a:\n    uses: toy_source\n  b:\n    uses: toy_scale\n    needs: a\n"
      "  c:\n    uses: toy_sink\n    needs: [a, b]\n"));
  EXPECT_EQ(source.name, "demo");
  ASSERT_EQ(source.stages.size(), 3u);
  EXPECT_EQ(source.stages[1].needs, std::vector<std::string>{"a"});
  EXPECT_EQ(source.stages[2].needs, (std::vector<std::string>{"a", "b"}));
  EXPECT_THAT(source.stages[2].origin, HasSubstr("p.yaml:8:3"));
}

TEST_F(ParseTest, NameDefaultsToFileStem) {
  EXPECT_EQ(parse_pipeline(write("stages:\n  a:\n    uses: x\n")).name, "p");
}

TEST_F(ParseTest, TextThatIsNotUtf8IsRefusedWithLineAndColumn) {
  // Found by tests/fuzz: such a string used to reach nlohmann::json, which threw.
  EXPECT_THAT(error_of("stages:\n  a:\n    uses: x\n    with: {name: ab\xd3}\n"),
              HasSubstr("p.yaml:4:20: not valid UTF-8 (byte 0xd3)"));
  EXPECT_THAT(error_of("stages:\n  a:\n    uses: x\n", {"a.with.n=\xff"}),
              HasSubstr("override 'a.with.n=': not valid UTF-8 (byte 10)"));
}

TEST_F(ParseTest, MalformedYamlCarriesLineAndColumn) {
  const std::string error = error_of("stages:\n  a:\n    uses: [x\n  b: 1\n");
  EXPECT_THAT(error, HasSubstr("p.yaml:"));
  EXPECT_THAT(error, HasSubstr("invalid YAML"));
  EXPECT_THAT(error, ::testing::MatchesRegex(".*p\\.yaml:[0-9]+:[0-9]+: invalid YAML.*"));
}

TEST_F(ParseTest, UnknownStageKeySuggestsTheNearest) {
  EXPECT_THAT(error_of("stages:\n  a:\n    uses: x\n    neeeds: [b]\n"),
              HasSubstr("p.yaml:4:5: stage 'a': unknown key 'neeeds' (did you mean 'needs'?)"));
}

TEST_F(ParseTest, UnknownTopLevelKeySuggestsTheNearest) {
  EXPECT_THAT(error_of("stagse:\n  a:\n    uses: x\n"),
              HasSubstr("p.yaml:1:1: pipeline: unknown key 'stagse' (did you mean 'stages'?)"));
}

TEST_F(ParseTest, DuplicateKeysAreRefused) {
  EXPECT_THAT(error_of("stages:\n  a:\n    uses: x\n  a:\n    uses: y\n"),
              HasSubstr("p.yaml:4:3: stages: duplicate key 'a'"));
}

TEST_F(ParseTest, MissingUses) {
  EXPECT_THAT(error_of("stages:\n  a:\n    needs: []\n"),
              HasSubstr("p.yaml:2:3: stage 'a' has no `uses:`"));
}

TEST_F(ParseTest, NeedsOfAnUnknownStage) {
  EXPECT_THAT(
      error_of("stages:\n  train:\n    uses: x\n  eval:\n    uses: y\n    needs: [trian]\n"),
      HasSubstr("p.yaml:6:13: stage 'eval' needs 'trian', which is not a stage of this "
                "pipeline (did you mean 'train'?)"));
}

TEST_F(ParseTest, NeedsItself) {
  EXPECT_THAT(error_of("stages:\n  a:\n    uses: x\n    needs: a\n"),
              HasSubstr("stage 'a' needs itself"));
}

TEST_F(ParseTest, CycleIsNamedInOrder) {
  const std::string error = error_of(
      "stages:\n  a:\n    uses: x\n    needs: c\n  b:\n    uses: x\n    needs: a\n"
      "  c:\n    uses: x\n    needs: b\n");
  EXPECT_THAT(error, HasSubstr("stages form a cycle: a -> c -> b -> a"));
  EXPECT_THAT(error, HasSubstr("p.yaml:2:3"));
}

TEST_F(ParseTest, NoStages) {
  EXPECT_THAT(error_of("name: x\n"), HasSubstr("the pipeline has no stages"));
}

TEST_F(ParseTest, BadStageName) {
  EXPECT_THAT(error_of("stages:\n  a.b:\n    uses: x\n"),
              HasSubstr("stage name 'a.b' may contain only"));
}

TEST_F(ParseTest, MissingFile) {
  try {
    parse_pipeline(dir_ / "nope.yaml");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("nope.yaml: cannot read pipeline file: no such file"));
  }
}

TEST_F(ParseTest, PluginDirsResolveAgainstTheFile) {
  const auto source = parse_pipeline(write("plugins: [my_plugins]\nstages:\n  a:\n    uses: x\n"));
  ASSERT_EQ(source.plugin_dirs.size(), 1u);
  EXPECT_EQ(source.plugin_dirs[0], (dir_.path() / "my_plugins").lexically_normal());
}

TEST_F(ParseTest, OverrideErrors) {
  const std::string text = "stages:\n  train:\n    uses: x\n";
  EXPECT_THAT(error_of(text, {"trian.with.lr=1"}),
              HasSubstr("override 'trian.with.lr=1': no stage 'trian' in"));
  EXPECT_THAT(error_of(text, {"trian.with.lr=1"}), HasSubstr("(did you mean 'train'?)"));
  EXPECT_THAT(error_of(text, {"train.lr=1"}),
              HasSubstr("only <stage>.with.<param>, name and description can be overridden"));
  EXPECT_THAT(error_of(text, {"train.with.lr"}),
              HasSubstr("expected <stage>.with.<param>=<value>"));
  EXPECT_THAT(error_of(text, {"train.with.lr="}), HasSubstr("no value after '='"));
  EXPECT_THAT(error_of(text, {"train.with.lr=[1"}), HasSubstr("invalid value"));
}

TEST_F(ParseTest, OverrideSetsName) {
  EXPECT_EQ(parse_pipeline(write("stages:\n  a:\n    uses: x\n"), {"name=other"}).name, "other");
}

}  // namespace
}  // namespace kiln
