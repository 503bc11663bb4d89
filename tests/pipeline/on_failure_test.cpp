// The pipeline's `on_failure:` and `on_failure_timeout_s:` as parse_pipeline reads
// them; the bad values, and the command's run, are tested through the kiln
// executable in tests/cli/on_failure_test.cpp.
#include <kiln/pipeline.h>

#include <gtest/gtest.h>

#include "support/support.h"

namespace kiln {
namespace {

class OnFailureParseTest : public ::testing::Test {
 protected:
  PipelineSource parse(const std::string& header) {
    const auto file = dir_ / "p.yaml";
    test::write_text(file, header + "stages:\n  a:\n    uses: x\n");
    return parse_pipeline(file);
  }
  test::TempDir dir_;
};

TEST_F(OnFailureParseTest, AbsentMeansNoCommand) {
  const FailureCommand command = parse("name: demo\n").on_failure;
  EXPECT_TRUE(command.argv.empty());
  EXPECT_EQ(command.origin, "");
}

TEST_F(OnFailureParseTest, AStringRunsThroughTheShellWithTheDefaultTimeout) {
  const FailureCommand command = parse("on_failure: echo \"$KILN_ERROR\" | mail ops\n").on_failure;
  EXPECT_EQ(command.argv,
            (std::vector<std::string>{"/bin/sh", "-c", "echo \"$KILN_ERROR\" | mail ops"}));
  EXPECT_EQ(command.timeout_s, 60.0);
  EXPECT_EQ(command.origin, (dir_ / "p.yaml").string() + ":1:13");
}

TEST_F(OnFailureParseTest, AListIsTheArgumentsAndTheTimeoutIsRead) {
  const PipelineSource source =
      parse("on_failure: [alert, --to, ops, 'two words']\non_failure_timeout_s: 2.5\n");
  EXPECT_EQ(source.on_failure.argv,
            (std::vector<std::string>{"alert", "--to", "ops", "two words"}));
  EXPECT_EQ(source.on_failure.timeout_s, 2.5);
}

}  // namespace
}  // namespace kiln
