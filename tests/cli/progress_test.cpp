// The progress line: redrawn in place on a terminal, plain log lines otherwise.
#include <gmock/gmock.h>

#include "cli_fixture.h"
#include "terminal.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;

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
