// kiln's global options and environment: --registry, -v and --color after any
// subcommand, KILN_LOG_LEVEL in any case, NO_COLOR, and the usage of a bare `kiln`.
#include <gmock/gmock.h>

#include "cli_fixture.h"
#include "commands.h"
#include "terminal.h"

namespace kiln::test {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

std::string kiln_binary() { return std::string(KILN_BINARY_DIR) + "/bin/kiln"; }

// The names of every subcommand, nested ones as "data import".
void collect_paths(CLI::App& app, const std::string& prefix, std::vector<std::string>& paths) {
  for (CLI::App* sub : app.get_subcommands({})) {
    if (sub->get_name().empty()) continue;  // an option group
    const std::string path = prefix + sub->get_name();
    paths.push_back(path);
    collect_paths(*sub, path + " ", paths);
  }
}

// Parsing only: no command runs, and nothing the command itself requires is
// demanded, so that what is left to check is whether the global options land.
void parse_only(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({})) {
    sub->final_callback({});
    sub->parse_complete_callback({});
    sub->require_subcommand(0);
    for (CLI::Option* option : sub->get_options()) option->required(false);
    parse_only(*sub);
  }
}

TEST(GlobalOptions, AreAcceptedAfterEverySubcommand) {
  CLI::App all;
  cli::GlobalOptions unused;
  cli::add_commands(all, unused);
  std::vector<std::string> paths;
  collect_paths(all, "", paths);
  ASSERT_GT(paths.size(), 20u);
  for (const std::string& path : paths) {
    CLI::App app;
    cli::GlobalOptions global;
    cli::add_commands(app, global);
    parse_only(app);
    try {
      app.parse(path + " --registry elsewhere --color never", false);
    } catch (const CLI::ParseError& e) {
      ADD_FAILURE() << "kiln " << path << " --registry elsewhere: " << e.what();
      continue;
    }
    EXPECT_EQ(global.registry, "elsewhere") << path;
    EXPECT_EQ(global.color, "never") << path;
  }
}

TEST_F(CliTest, RegistryAfterANestedSubcommand) {
  const CommandResult result = run_command(
      {kiln_binary(), "data", "ls", "--registry", (dir_ / "other").string()}, {}, dir_.path());
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

TEST_F(CliTest, BareKilnPrintsTheUsageAndExits2) {
  const CommandResult result = run_command({kiln_binary()}, {}, dir_.path());
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("Usage:"));
  EXPECT_THAT(result.err, HasSubstr("Subcommands:"));
  EXPECT_THAT(result.err, EndsWith("kiln: config error: A subcommand is required\n"));
  const CommandResult data = run_command({kiln_binary(), "data"}, {}, dir_.path());
  EXPECT_EQ(data.exit_code, 2);
  EXPECT_THAT(data.err, HasSubstr("import"));
}

// `kiln -v plan missing.yaml` logs the debug line "raised at ..." before its error.
CommandResult plan_missing(const std::filesystem::path& cwd,
                           const std::map<std::string, std::string>& env,
                           std::vector<std::string> options = {}) {
  std::vector<std::string> argv = {kiln_binary(), "plan", "missing.yaml"};
  argv.insert(argv.end(), options.begin(), options.end());
  return run_command(argv, env, cwd);
}

TEST_F(CliTest, LogLevelNamesIgnoreCase) {
  for (const char* name : {"DEBUG", "Debug", "debug"}) {
    const CommandResult result = plan_missing(dir_.path(), {{"KILN_LOG_LEVEL", name}});
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_THAT(result.err, HasSubstr("raised at")) << name;
  }
  const CommandResult warning = plan_missing(dir_.path(), {{"KILN_LOG_LEVEL", "WARNING"}});
  EXPECT_THAT(warning.err, Not(HasSubstr("raised at")));
}

TEST_F(CliTest, AnUnknownLogLevelIsOneConfigError) {
  const CommandResult result =
      run_command({kiln_binary(), "version"}, {{"KILN_LOG_LEVEL", "verbose"}}, dir_.path());
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(result.err,
            "kiln: config error: KILN_LOG_LEVEL: unknown log level 'verbose'; accepted (any "
            "case): debug, info, warn, warning, error\n");
}

TEST_F(CliTest, ColorFollowsTheTerminalNoColorAndTheFlag) {
  const std::vector<std::string> argv = {kiln_binary(), "-v", "plan", "missing.yaml"};
  const std::string escape = "\033[";
  // spdlog colours only a terminal whose TERM it knows.
  EXPECT_THAT(run_on_terminal(argv, {{"TERM", "xterm"}, {"NO_COLOR", ""}}, dir_.path()),
              HasSubstr(escape));
  EXPECT_THAT(run_on_terminal(argv, {{"TERM", "xterm"}, {"NO_COLOR", "1"}}, dir_.path()),
              Not(HasSubstr(escape)));
  std::vector<std::string> never = argv;
  never.push_back("--color=never");
  EXPECT_THAT(run_on_terminal(never, {{"TERM", "xterm"}, {"NO_COLOR", ""}}, dir_.path()),
              Not(HasSubstr(escape)));
  // Not a terminal: no colour unless asked for.
  EXPECT_THAT(plan_missing(dir_.path(), {{"NO_COLOR", ""}}, {"-v"}).err, Not(HasSubstr(escape)));
  EXPECT_THAT(plan_missing(dir_.path(), {{"NO_COLOR", "1"}}, {"-v", "--color", "always"}).err,
              HasSubstr(escape));
}

}  // namespace
}  // namespace kiln::test
