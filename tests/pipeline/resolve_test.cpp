// resolve_pipeline: every stage checked against its type's schema, with overrides.
#include <kiln/error.h>
#include <kiln/pipeline.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/support.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

class ResolveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_.load_directory(std::filesystem::path(KILN_FIXTURE_PLUGINS) / "toy");
    test::write_text(dir_ / "data.txt", "one\ntwo\nthree\n");
  }
  Pipeline resolve(const std::string& text, const std::vector<std::string>& overrides = {}) {
    const auto file = dir_ / "p.yaml";
    test::write_text(file, text);
    return resolve_pipeline(parse_pipeline(file, overrides), catalog_);
  }
  std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
    try {
      resolve(text, overrides);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  }
  StageCatalog catalog_;
  test::TempDir dir_;
};

const char* kAllTypes = "stages:\n  v:\n    uses: toy_all_types\n    with:\n      needed: 7\n";

TEST_F(ResolveTest, DefaultsAreFilledAndTypesConverted) {
  const Pipeline pipeline = resolve(
      "stages:\n  v:\n    uses: toy_all_types\n    with:\n      needed: 7\n      flag: true\n"
      "      rate: 3e-4\n      sizes: [4, 5]\n      names: [a, b]\n      extra: {k: [1, 2.5, "
      "x]}\n");
  const Params& params = pipeline.stages.at(0).params;
  EXPECT_EQ(params.get_int("needed"), 7);
  EXPECT_TRUE(params.get_bool("flag"));
  EXPECT_DOUBLE_EQ(params.get_float("rate"), 3e-4);
  EXPECT_EQ(params.get_int("count"), 3);         // default
  EXPECT_EQ(params.get_string("mode"), "fast");  // first choice
  EXPECT_EQ(params.get_int_list("sizes"), (std::vector<std::int64_t>{4, 5}));
  EXPECT_EQ(params.get_string_list("names"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(params.get("extra").dump(), R"({"k":[1,2.5,"x"]})");
  EXPECT_THAT(params.origin("rate"), HasSubstr("p.yaml:7:7"));
  EXPECT_EQ(params.origin("count"), "default");
}

TEST_F(ResolveTest, UnknownStageTypeSuggestsAndListsKnownTypes) {
  const std::string error = error_of("stages:\n  s:\n    uses: toy_sourec\n");
  EXPECT_THAT(
      error,
      HasSubstr("p.yaml:3:11: unknown stage type 'toy_sourec' (did you mean 'toy_source'?)"));
  EXPECT_THAT(error,
              HasSubstr("known types: toy_all_types, toy_fail, toy_scale, toy_sink, toy_source"));
}

TEST_F(ResolveTest, UnknownParameterSuggestsTheNearest) {
  EXPECT_THAT(
      error_of(
          "stages:\n  v:\n    uses: toy_all_types\n    with:\n      needed: 1\n      raet: 2\n"),
      HasSubstr("p.yaml:6:7: stage 'v' (toy_all_types): unknown parameter 'raet' (did you mean "
                "'rate'?)"));
}

TEST_F(ResolveTest, WrongTypesNameTheValue) {
  const std::string base = "stages:\n  v:\n    uses: toy_all_types\n    with:\n      needed: ";
  EXPECT_THAT(error_of(base + "abc\n"),
              HasSubstr("p.yaml:5:7: v.with.needed: expected int, got 'abc'"));
  EXPECT_THAT(error_of(base + "1.5\n"), HasSubstr("expected int, got '1.5'"));
  EXPECT_THAT(error_of(base + "[1]\n"), HasSubstr("expected int, got a list"));
  EXPECT_THAT(error_of(base + "1\n      flag: maybe\n"),
              HasSubstr("v.with.flag: expected bool, got 'maybe'"));
  EXPECT_THAT(error_of(base + "1\n      sizes: [1, x]\n"),
              HasSubstr("v.with.sizes: expected int, got 'x'"));
  EXPECT_THAT(error_of(base + "1\n      sizes: 3\n"), HasSubstr("expected list of int, got '3'"));
  EXPECT_THAT(error_of(base + "1\n      mode: fsat\n"),
              HasSubstr("v.with.mode: 'fsat' is not one of fast, exact (did you mean 'fast'?)"));
}

TEST_F(ResolveTest, MissingRequiredParameter) {
  EXPECT_THAT(error_of("stages:\n  v:\n    uses: toy_all_types\n"),
              HasSubstr("p.yaml:2:3: stage 'v' (toy_all_types): missing required parameter "
                        "'needed' (int: a required int)"));
}

TEST_F(ResolveTest, PathParametersMustExistAndResolveAgainstTheFile) {
  const Pipeline pipeline =
      resolve("stages:\n  s:\n    uses: toy_source\n    with: {file: data.txt}\n");
  EXPECT_EQ(pipeline.stages[0].params.get_path("file"), dir_.path() / "data.txt");
  EXPECT_THAT(error_of("stages:\n  s:\n    uses: toy_source\n    with:\n      file: missing.txt\n"),
              HasSubstr("p.yaml:5:7: s.with.file: file not found: " +
                        (dir_.path() / "missing.txt").string()));
}

TEST_F(ResolveTest, StageCheckRunsBeforeAnythingElse) {
  EXPECT_THAT(error_of("stages:\n  s:\n    uses: toy_scale\n    with:\n      factor: -1\n"),
              HasSubstr("p.yaml:5:7: s.with.factor: must be > 0"));
}

TEST_F(ResolveTest, OverridesReplaceValuesAndNameThemselvesInErrors) {
  const Pipeline pipeline =
      resolve(std::string(kAllTypes), {"v.with.rate=0.25", "v.with.extra.depth=3"});
  EXPECT_DOUBLE_EQ(pipeline.stages[0].params.get_float("rate"), 0.25);
  EXPECT_EQ(pipeline.stages[0].params.get("extra")["depth"], 3);
  EXPECT_EQ(pipeline.stages[0].params.origin("rate"), "override 'v.with.rate=0.25'");
  EXPECT_THAT(error_of(kAllTypes, {"v.with.count=lots"}),
              HasSubstr("override 'v.with.count=lots': v.with.count: expected int, got 'lots'"));
  EXPECT_THAT(error_of(kAllTypes, {"v.with.raet=1"}),
              HasSubstr("unknown parameter 'raet' (did you mean 'rate'?)"));
}

TEST_F(ResolveTest, StagesComeInTopologicalOrder) {
  const Pipeline pipeline = resolve(
      "stages:\n  sink:\n    uses: toy_sink\n    needs: [scale]\n  scale:\n    uses: toy_scale\n"
      "    needs: [src]\n  src:\n    uses: toy_source\n    with: {file: data.txt}\n");
  ASSERT_EQ(pipeline.stages.size(), 3u);
  EXPECT_EQ(pipeline.stages[0].name, "src");
  EXPECT_EQ(pipeline.stages[1].name, "scale");
  EXPECT_EQ(pipeline.stages[2].name, "sink");
}

TEST_F(ResolveTest, FlatParamsAndResolvedYaml) {
  const Pipeline pipeline = resolve(kAllTypes, {"v.with.label=hello"});
  const auto flat = pipeline.flat_params();
  EXPECT_THAT(flat,
              ::testing::Contains(std::pair<std::string, std::string>("v.with.label", "hello")));
  EXPECT_THAT(flat,
              ::testing::Contains(std::pair<std::string, std::string>("v.with.sizes", "[1,2]")));
  EXPECT_THAT(pipeline.resolved_yaml, HasSubstr("label: hello"));
  EXPECT_THAT(pipeline.resolved_yaml, HasSubstr("uses: toy_all_types"));
}

}  // namespace
}  // namespace kiln
