// Aliases in pipeline files: yaml-cpp shares an alias's node with its anchor, so a
// node can contain itself and nine levels of nine aliases expand to 9^9 nodes.
// Both are one ConfigError at file:line:col, found before anything walks the tree.
#include <kiln/error.h>
#include <kiln/pipeline.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "support/hostile_yaml.h"
#include "support/support.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

std::string parse_error(const std::filesystem::path& file, const std::string& text,
                        const std::vector<std::string>& overrides = {}) {
  test::write_text(file, text);
  try {
    parse_pipeline(file, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(YamlLimits, SelfReferencingAliasIsOneErrorWithItsPlace) {
  const test::TempDir dir;
  const std::string error = parse_error(dir / "p.yaml", test::self_alias_pipeline());
  EXPECT_THAT(error, MatchesRegex(".*p\\.yaml:5:[0-9]+: the pipeline nests deeper than 64 "
                                  "levels \\(does an alias contain itself\\?\\)"));
}

TEST(YamlLimits, AliasBombStopsAtTheExpansionBudget) {
  const test::TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  const std::string error = parse_error(dir / "p.yaml", test::alias_bomb_pipeline());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_THAT(error, MatchesRegex(".*p\\.yaml:[0-9]+:[0-9]+: the pipeline expands to more than "
                                  "1000000 nodes .*"));
  EXPECT_LT(seconds, 2.0);
}

TEST(YamlLimits, SharedAliasesWithinTheBudgetStillWork) {
  const test::TempDir dir;
  test::write_text(dir / "p.yaml",
                   "stages:\n  a:\n    uses: x\n    with: &w {n: 1, list: [1, 2]}\n"
                   "  b:\n    uses: y\n    with: *w\n");
  EXPECT_EQ(parse_pipeline(dir / "p.yaml").stages.size(), 2u);
}

TEST(YamlLimits, OverrideValueWithASelfAliasIsRefused) {
  const test::TempDir dir;
  const std::string error = parse_error(dir / "p.yaml", "stages:\n  a:\n    uses: x\n",
                                        {"a.with.model=&a {layers: [*a]}"});
  EXPECT_THAT(error, HasSubstr("override 'a.with.model=&a {layers: [*a]}': the value nests "
                               "deeper than 64 levels"));
}

}  // namespace
}  // namespace kiln
