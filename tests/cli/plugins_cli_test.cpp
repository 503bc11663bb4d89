// Plugins through the CLI: refusals with their exit code, `plugins:` in a pipeline,
// describe.
#include <gmock/gmock.h>

#include "cli_fixture.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

CommandResult kiln_with_plugin_path(const fs::path& plugin_dir, std::vector<std::string> args,
                                    const fs::path& cwd) {
  args.insert(args.begin(), std::string(KILN_BINARY_DIR) + "/bin/kiln");
  return run_command(args, {{"KILN_PLUGIN_PATH", plugin_dir.string()}}, cwd);
}

const fs::path kFixtures = KILN_FIXTURE_PLUGINS;

TEST_F(CliTest, AnAbiMismatchOnThePluginPathIsRefusedWithThePluginExitCode) {
  const CommandResult result =
      kiln_with_plugin_path(kFixtures / "bad_abi", {"run", "p.yaml"}, dir_.path());
  EXPECT_EQ(result.exit_code, 5);
  EXPECT_THAT(result.err,
              ::testing::MatchesRegex(
                  "kiln: plugin error: plugin .*/kiln-bad_abi\\.so built for ABI [0-9]+, "
                  "engine speaks ABI [0-9]+: rebuild it against this kiln\n"));
  EXPECT_FALSE(fs::exists(registry()));
}

TEST_F(CliTest, AModuleWithoutTheEntrySymbolIsRefused) {
  const CommandResult result =
      kiln_with_plugin_path(kFixtures / "no_entry", {"plugins", "list"}, dir_.path());
  EXPECT_EQ(result.exit_code, 5);
  EXPECT_THAT(result.err, HasSubstr("missing entry symbol 'kiln_plugin_entry'"));
}

TEST_F(CliTest, PipelinePluginsDirectoriesAreLoadedRelativeToTheFile) {
  write_text(dir_ / "sub" / "lines.txt", "1\n2\n");
  write_text(dir_ / "sub" / "toy.yaml",
             "plugins: [" + (kFixtures / "toy").string() +
                 "]\nstages:\n  src:\n    uses: toy_source\n    with: {file: lines.txt}\n"
                 "  scale:\n    uses: toy_scale\n    needs: [src]\n    with: {factor: 10}\n");
  const CommandResult result = kiln({"run", "sub/toy.yaml"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, ::testing::ContainsRegex("src +toy_source +ran .* lines 2"));
  const CommandResult describe =
      kiln({"plugins", "describe", "toy_scale", "--pipeline", "sub/toy.yaml"});
  ASSERT_EQ(describe.exit_code, 0) << describe.err;
  EXPECT_THAT(describe.out, HasSubstr("plugin: toy 1.0.0"));
  EXPECT_THAT(describe.out, ::testing::ContainsRegex("factor +float +default 2.0 +multiplier"));
}

TEST_F(CliTest, DescribeOfAnUnknownStageSuggestsTheNearest) {
  const CommandResult result = kiln({"plugins", "describe", "trian"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("unknown stage type 'trian' (did you mean 'train'?)"));
}

TEST_F(CliTest, VersionSaysWhatItCanRunOn) {
  const CommandResult result = kiln({"version"});
  ASSERT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.out,
              ::testing::ContainsRegex("^kiln [0-9]+\\.[0-9]+\\.[0-9]+\nplugin ABI [0-9]+\n"));
  // With CUDA built but no GPU here, or without CUDA: either way it names the CPU fallback.
  EXPECT_THAT(result.out,
              ::testing::ContainsRegex(
                  "CUDA: not built|devices: none .*stages run on the CPU|device cuda:0"));
}

}  // namespace
}  // namespace kiln::test
