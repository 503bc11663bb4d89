// Where no GPU is usable (no CUDA build, no driver, no device), `device: auto`
// trains on the CPU and says so in one log line, and `device: cuda` fails with one
// clear line. On a machine with a GPU these tests skip: auto picks the GPU there.
#include <kiln/device.h>

#include <gmock/gmock.h>

#include <algorithm>

#include "cli/cli_fixture.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;

class DeviceFallbackTest : public CliTest {
 protected:
  void SetUp() override {
    const DeviceReport report = probe_devices();
    if (!report.devices.empty())
      GTEST_SKIP() << "a CUDA device is usable here (" << report.devices.front().name
                   << "): these tests check the fallback without one";
    why_none_ = report.why_none;
    CliTest::SetUp();
  }
  std::string why_none_;
};

TEST_F(DeviceFallbackTest, AutoTrainsOnTheCpuAndSaysWhyInOneLine) {
  const CommandResult result = kiln({"run", "p.yaml", "train.with.epochs=1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto lines = lines_of(result.err);
  const auto mentions = std::count_if(lines.begin(), lines.end(), [](const std::string& line) {
    return line.find("device auto -> cpu") != std::string::npos;
  });
  EXPECT_EQ(mentions, 1) << result.err;
  EXPECT_THAT(result.err, HasSubstr("device auto -> cpu (" + why_none_ + ")"));
  EXPECT_THAT(result.err, HasSubstr("on cpu"));
}

TEST_F(DeviceFallbackTest, CudaFailsWithOneClearLine) {
  const CommandResult result = kiln({"run", "p.yaml", "train.with.device=cuda"});
  EXPECT_EQ(result.exit_code, 2) << result.err;
  const auto lines = lines_of(result.err);
  const auto errors = std::count_if(lines.begin(), lines.end(), [](const std::string& line) {
    return line.rfind("kiln: ", 0) == 0;
  });
  EXPECT_EQ(errors, 1) << result.err;
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(),
              HasSubstr("device cuda: no CUDA device is usable here (" + why_none_ + ")"));
}

}  // namespace
}  // namespace kiln::test
