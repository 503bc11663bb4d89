// `kiln version` names the CUDA software it runs with, one line each, so that a
// report from a GPU machine says what ran; without a driver it says so in one line
// and still exits 0.
#include <kiln/device.h>

#include <gmock/gmock.h>

#include "cli_fixture.h"

namespace kiln::test {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(CliTest, VersionNamesTheCudaDriverRuntimeAndLibraries) {
  const CommandResult result = kiln({"version"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
#ifndef KILN_HAVE_CUDA
  EXPECT_THAT(result.out, HasSubstr("\nCUDA: not built\n"));
  EXPECT_THAT(result.out, Not(HasSubstr("CUDA driver")));
#else
  // Whether this machine has a driver decides the first line; the test's process
  // asks the same runtime the CLI links.
  if (cuda_versions().driver.empty())
    EXPECT_THAT(result.out, ContainsRegex("\nCUDA driver: none \\([^\n]+\\)\n"));
  else
    EXPECT_THAT(result.out, ContainsRegex("\nCUDA driver: [0-9]+\\.[0-9]+\n"));
  // Known without a driver: the runtime is linked in, the libraries report
  // themselves. kiln needs CUDA 12 or later, cuDNN 9 and NCCL 2.
  EXPECT_THAT(result.out, ContainsRegex("\nCUDA runtime: 1[2-9]\\.[0-9]+\n"));
  EXPECT_THAT(result.out, ContainsRegex("\ncuDNN: 9\\.[0-9]+\\.[0-9]+\n"));
  EXPECT_THAT(result.out, ContainsRegex("\ncuBLASLt: 1[2-9]\\.[0-9]+\\.[0-9]+\n"));
  EXPECT_THAT(result.out, ContainsRegex("\nNCCL: 2\\.[0-9]+\\.[0-9]+\n"));
  EXPECT_THAT(result.out, Not(HasSubstr("unknown")));
#endif
}

}  // namespace
}  // namespace kiln::test
