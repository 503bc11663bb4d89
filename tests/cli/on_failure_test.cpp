// The pipeline's `on_failure:` command through the real kiln executable
// (docs/cli.md, "Alerts"): it runs once when a run fails, with the failure in its
// environment, in the pipeline file's directory; never on success or interruption;
// and whatever it does, kiln's own error line and exit code stay as they were.
#include <gmock/gmock.h>
#include <sys/wait.h>

#include <cstring>

#include "registry_cli_support.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
namespace fs = std::filesystem;

const char* const kVariables[] = {"KILN_FAILED_STAGE",  "KILN_ERROR",    "KILN_ERROR_KIND",
                                  "KILN_EXIT_CODE",     "KILN_RUN_ID",   "KILN_PIPELINE",
                                  "KILN_PIPELINE_FILE", "KILN_REGISTRY", "KILN_RANK"};

// The command that records what these tests look at: its environment and directory.
const std::string kRecordEnv = "on_failure: \"env > hook-env.txt\"\n";
// How kiln names the pipeline file in its messages: as given on the command line.
const std::string kFile = "../alert.yaml";

class OnFailureTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    fs::create_directories(dir_ / "work");
    // 1000 labels announced, 10 present: the first stage fails with a data error.
    write_idx(dir_ / "short-labels.idx", 0x08, {1000}, std::vector<std::uint8_t>(10));
  }

  // `kiln run <pipeline file> <extra>` from dir/work (not the pipeline's directory),
  // with the registry given relative to it.
  CommandResult run(const std::string& pipeline, std::vector<std::string> extra = {}) {
    write_text(dir_ / "alert.yaml", pipeline);
    std::vector<std::string> args = {std::string(KILN_BINARY_DIR) + "/bin/kiln", "run",
                                     "../alert.yaml"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_command(args, {{"KILN_REGISTRY", "../registry"}, {"KILN_PLAIN_PROGRESS", "1"}},
                       dir_ / "work");
  }
  // The synthetic pipeline whose first stage reads a truncated labels file.
  static std::string crashing(const std::string& header) {
    std::string pipeline = header + synthetic_pipeline();
    const std::string from = "train-labels.idx";
    pipeline.replace(pipeline.find(from), from.size(), "short-labels.idx");
    return pipeline;
  }
  // The KILN_* variables the command saw, from the file kRecordEnv writes.
  std::map<std::string, std::string> hook_environment() {
    std::map<std::string, std::string> env;
    for (const auto& line : lines_of(read_text(dir_ / "hook-env.txt")))
      for (const char* name : kVariables)
        if (line.starts_with(std::string(name) + "=")) env[name] = line.substr(strlen(name) + 1);
    return env;
  }
  // kiln's error line: the last line of its stderr.
  static std::string error_line(const CommandResult& result) {
    const auto lines = lines_of(result.err);
    return lines.empty() ? "" : lines.back();
  }
};

// Issue 13, acceptance 7: the gate refuses a worse model (gate_test.cpp's
// pipeline); the command runs once, after the run was marked FAILED, and sees
// every documented variable.
TEST_F(OnFailureTest, AGateRefusalRunsItWithTheDocumentedEnvironment) {
  const std::string pipeline = kRecordEnv + synthetic_pipeline();
  const CommandResult first = run(pipeline, champion_gate());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_FALSE(fs::exists(dir_ / "hook-env.txt")) << "ran on success";
  EXPECT_THAT(first.err, Not(HasSubstr("on_failure")));

  std::vector<std::string> worse = champion_gate();
  worse.insert(worse.end(), {"train.with.epochs=1", "train.with.lr=0.0003"});
  const CommandResult refused = run(pipeline, worse);
  ASSERT_EQ(refused.exit_code, 4) << refused.err;
  const std::string line = error_line(refused);
  ASSERT_THAT(line, StartsWith("kiln: gate failed: stage 'register' (register): gate refused "));
  EXPECT_THAT(refused.err, HasSubstr("on_failure (" + kFile +
                                     ":1:13): running the pipeline's command (timeout 60 s)"));
  std::size_t mentions = 0;  // the line above, and no warning
  for (const auto& err_line : lines_of(refused.err))
    mentions += err_line.find("on_failure") != std::string::npos;
  EXPECT_EQ(mentions, 1u) << refused.err;
  EXPECT_EQ(refused.out, "");
  EXPECT_FALSE(fs::exists(dir_ / "work" / "hook-env.txt")) << "ran in kiln's directory";

  const auto env = hook_environment();
  const auto runs = pipeline_runs(registry());
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].status, registry::RunStatus::Failed);
  EXPECT_EQ(env.at("KILN_FAILED_STAGE"), "register");
  EXPECT_EQ("kiln: gate failed: " + env.at("KILN_ERROR"), line);
  EXPECT_EQ(env.at("KILN_ERROR_KIND"), "gate failed");
  EXPECT_EQ(env.at("KILN_EXIT_CODE"), "4");
  EXPECT_EQ(env.at("KILN_RUN_ID"), runs[1].run_id);
  EXPECT_EQ(env.at("KILN_PIPELINE"), "synthetic");
  EXPECT_EQ(env.at("KILN_PIPELINE_FILE"), (dir_ / "alert.yaml").string());
  EXPECT_EQ(env.at("KILN_REGISTRY"), registry().string());
  EXPECT_EQ(env.count("KILN_RANK"), 0u);  // kiln's environment passes through as it is
}

// A stage that fails on bad data, in list form: exit code 3, no tracking run yet.
TEST_F(OnFailureTest, AStageFailureRunsTheListFormWithExitCode3) {
  const CommandResult result = run(crashing("on_failure: [sh, -c, 'env > hook-env.txt', sh]\n"));
  ASSERT_EQ(result.exit_code, 3) << result.err;
  EXPECT_THAT(error_line(result),
              StartsWith("kiln: data error: stage 'train_data' (idx_import): "));
  const auto env = hook_environment();
  EXPECT_EQ(env.at("KILN_FAILED_STAGE"), "train_data");
  EXPECT_EQ(env.at("KILN_EXIT_CODE"), "3");
  EXPECT_EQ(env.at("KILN_ERROR_KIND"), "data error");
  EXPECT_EQ("kiln: data error: " + env.at("KILN_ERROR"), error_line(result));
  EXPECT_EQ(env.at("KILN_RUN_ID"), "");  // nothing had logged: no run was opened
}

// A plugin that cannot be loaded (the pipeline's `plugins:` names one built for
// another ABI) fails the run before any stage: the command runs, with no stage.
TEST_F(OnFailureTest, APluginErrorRunsItWithoutAStage) {
  const std::string plugins =
      "plugins: [" + (fs::path(KILN_FIXTURE_PLUGINS) / "bad_abi").string() + "]\n";
  const CommandResult result = run(kRecordEnv + plugins + synthetic_pipeline());
  ASSERT_EQ(result.exit_code, 5) << result.err;
  EXPECT_THAT(error_line(result), StartsWith("kiln: plugin error: plugin "));
  const auto env = hook_environment();
  EXPECT_EQ(env.at("KILN_FAILED_STAGE"), "");
  EXPECT_EQ(env.at("KILN_EXIT_CODE"), "5");
  EXPECT_EQ("kiln: plugin error: " + env.at("KILN_ERROR"), error_line(result));
  EXPECT_EQ(env.at("KILN_RUN_ID"), "");
}

// A command that fails, or hangs past its timeout, changes neither kiln's exit code
// nor its error line; it costs one warning line. Its output goes to stderr.
TEST_F(OnFailureTest, AFailingOrHangingCommandLeavesKilnsResultAlone) {
  const CommandResult plain = run(crashing(""));
  ASSERT_EQ(plain.exit_code, 3) << plain.err;

  const CommandResult failing = run(crashing("on_failure: 'echo hook says hello; exit 1'\n"));
  EXPECT_EQ(failing.exit_code, 3) << failing.err;
  EXPECT_EQ(error_line(failing), error_line(plain));
  EXPECT_EQ(failing.out, "");
  EXPECT_THAT(failing.err, HasSubstr("hook says hello\n"));
  EXPECT_THAT(failing.err,
              HasSubstr("on_failure (" + kFile + ":1:13): the command exited with code 1\n"));

  // The command starts a child and waits for it: the timeout kills both.
  const auto start = std::chrono::steady_clock::now();
  const CommandResult hanging = run(crashing(
      "on_failure: 'sleep 30 & echo $! > sleeper.pid; wait'\non_failure_timeout_s: 0.5\n"));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(hanging.exit_code, 3) << hanging.err;
  EXPECT_EQ(error_line(hanging), error_line(plain));
  EXPECT_THAT(hanging.err, HasSubstr("the command did not finish within 0.5 s "
                                     "(on_failure_timeout_s) and was killed\n"));
  EXPECT_LT(seconds, 20.0);
  const std::string sleeper = lines_of(read_text(dir_ / "sleeper.pid")).at(0);
  const fs::path proc = fs::path("/proc") / sleeper / "stat";
  // Gone, or a zombie waiting for its new parent to reap it.
  EXPECT_TRUE(!fs::exists(proc) || read_text(proc).find(") Z ") != std::string::npos)
      << "the command's child is still running";

  const CommandResult missing = run(crashing("on_failure: [no-such-alert-program]\n"));
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_EQ(error_line(missing), error_line(plain));
  EXPECT_THAT(missing.err, HasSubstr("cannot run 'no-such-alert-program': not found on PATH\n"));
}

// Ctrl-C (or a scheduler's SIGTERM) ends the run with 130 and no alert.
TEST_F(OnFailureTest, AnInterruptedRunDoesNotRunIt) {
  write_text(dir_ / "alert.yaml", kRecordEnv + synthetic_pipeline());
  const fs::path err_file = dir_ / "stderr.txt";
  const pid_t pid = spawn_kiln({"run", "alert.yaml", "train.with.epochs=100000"}, dir_.path(),
                               registry(), err_file);
  const ChildGuard guard(pid);
  ASSERT_TRUE(wait_for([&] {
    return read_text(err_file).find("stage train (train): running") != std::string::npos;
  }));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_FALSE(fs::exists(dir_ / "hook-env.txt"));
  EXPECT_THAT(read_text(err_file), Not(HasSubstr("on_failure")));
}

// A data-parallel job alerts once, from rank 0.
TEST_F(OnFailureTest, ADataParallelJobRunsItOnRank0Only) {
  const CommandResult result =
      run(crashing("on_failure: 'echo \"rank $KILN_RANK\" >> hook-ranks.txt'\n"), {"--nproc", "2"});
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_EQ(read_text(dir_ / "hook-ranks.txt"), "rank 0\n");
}

// Bad `on_failure:` values: one line naming file:line:col, exit 2, nothing written.
TEST_F(OnFailureTest, BadValuesAreConfigErrorsNamingThePosition) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"on_failure: {mail: ops}\n",
       ":1:13: on_failure must be a command: a string (run with "
       "/bin/sh -c) or a list of arguments"},
      {"on_failure: ''\n",
       ":1:13: on_failure must be a command: a string (run with /bin/sh -c) "
       "or a list of arguments, not an empty string"},
      {"on_failure: '  '\n", ", not an empty string"},
      {"on_failure: []\n",
       ":1:13: on_failure must be a command: a string (run with /bin/sh -c) "
       "or a list of arguments, not an empty list"},
      {"on_failure: [mail, [ops]]\n", ":1:20: on_failure: each argument must be a single value"},
      {"on_failure: ['', x]\n", ":1:14: on_failure: the program (first argument) is empty"},
      {"on_failure:\n",
       ":1:1: on_failure must be a command: a string (run with /bin/sh -c) or "
       "a list of arguments, not empty"},
      {"on_failure: 'true'\non_failure_timeout_s: 0\n",
       ":2:23: on_failure_timeout_s must be a number of seconds above 0, got '0'"},
      {"on_failure: 'true'\non_failure_timeout_s: -5\n", "got '-5'"},
      {"on_failure: 'true'\non_failure_timeout_s: soon\n", "got 'soon'"},
      {"on_failure: 'true'\non_failure_timeout_s: .inf\n", "got '.inf'"},
      {"on_failure: 'true'\non_failure_timeout_s: [1]\n",
       ":2:23: on_failure_timeout_s must be "
       "a number of seconds above 0, got a list"},
      {"on_failure: 'true'\non_failure_timeout_s:\n",
       ":2:1: on_failure_timeout_s must be a "
       "number of seconds above 0, got nothing"},
      {"on_failure_timeout_s: 10\n",
       ":1:23: on_failure_timeout_s is set but there is no on_failure"},
      {"on_failur: 'true'\n",
       ":1:1: pipeline: unknown key 'on_failur' (did you mean "
       "'on_failure'?)"},
  };
  for (const auto& [header, message] : cases) {
    const CommandResult result = run(header + synthetic_pipeline());
    EXPECT_EQ(result.exit_code, 2) << header << result.err;
    EXPECT_EQ(lines_of(result.err).size(), 1u) << header << result.err;
    EXPECT_THAT(result.err, StartsWith("kiln: config error: " + kFile)) << header;
    EXPECT_THAT(result.err, HasSubstr(message)) << header << result.err;
    EXPECT_EQ(result.out, "");
    EXPECT_FALSE(fs::exists(registry())) << header;
  }
  // No command-line form: overrides stay <stage>.with.<param>, name and description.
  const CommandResult override = run(synthetic_pipeline(), {"on_failure=true"});
  EXPECT_EQ(override.exit_code, 2) << override.err;
  EXPECT_THAT(override.err, HasSubstr("override 'on_failure=true': only <stage>.with.<param>"));
}

}  // namespace
}  // namespace kiln::test
