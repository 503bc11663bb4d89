// The progress line: redrawn in place on a terminal, plain log lines otherwise.
#include <gmock/gmock.h>
#include <pty.h>
#include <sys/wait.h>

#include "cli_fixture.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;

// Runs kiln with stdout and stderr on a pseudo-terminal; returns all it wrote.
std::string run_on_terminal(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env,
                            const std::filesystem::path& cwd) {
  int terminal = -1;
  const pid_t pid = ::forkpty(&terminal, nullptr, nullptr, nullptr);
  if (pid == 0) {
    for (const auto& [key, value] : env) ::setenv(key.c_str(), value.c_str(), 1);
    ::unsetenv("KILN_PLAIN_PROGRESS");
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  std::string output;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(terminal, buffer, sizeof buffer);
    if (n <= 0) break;  // EIO once the child has exited and closed the terminal
    output.append(buffer, static_cast<std::size_t>(n));
  }
  ::waitpid(pid, nullptr, 0);
  ::close(terminal);
  return output;
}

TEST_F(CliTest, OnATerminalTheProgressLineIsRedrawnInPlace) {
  const std::string output = run_on_terminal(
      {std::string(KILN_BINARY_DIR) + "/bin/kiln", "run", "p.yaml", "train.with.epochs=30"},
      {{"KILN_REGISTRY", registry().string()}}, dir_.path());
  // Each redraw clears the line (CR + erase to end of line) and writes it again.
  EXPECT_THAT(output, HasSubstr("\r\033[Ktrain  epoch "));
  EXPECT_THAT(output, HasSubstr("samples/s"));
  EXPECT_THAT(output, HasSubstr("synthetic-mlp version 1"));
}

TEST_F(CliTest, OffATerminalProgressComesAsPlainLogLines) {
  const CommandResult result = kiln({"run", "p.yaml"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err.find('\r'), std::string::npos);
  EXPECT_THAT(result.err,
              ::testing::ContainsRegex(
                  "info train  epoch 3/3  step 60/60 100%  loss [0-9.]+  [0-9]+ samples/s\n"));
}

}  // namespace
}  // namespace kiln::test
