// The README's main job: the quickstart pipeline on the real Fashion-MNIST (import,
// validate, drift, train, evaluate with its gate, register), then the registry read
// back with the real MLflow and safetensors clients.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/support.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(Quickstart, TrainsToTheAccuracyTargetRegistersAndIsCachedOnTheSecondRun) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed (tools/install-deps.sh installs it)";
  TempDir dir;
  const std::string kiln = std::string(KILN_BINARY_DIR) + "/bin/kiln";
  const std::string pipeline = std::string(KILN_SOURCE_DIR) + "/configs/quickstart.yaml";
  const std::map<std::string, std::string> env = {{"KILN_PLAIN_PROGRESS", "1"}};

  const CommandResult first = run_command({kiln, "run", pipeline}, env, dir.path());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("fashion-mnist-mlp version 1 (champion)"));
  // The training set passed its 7 checks (schema of x and y, label range, label
  // set, balance, duplicates, overlap with the test set), and the test set did not
  // drift from it.
  EXPECT_THAT(first.out, HasSubstr("10 classes; 7 checks passed"));
  EXPECT_THAT(first.out, HasSubstr("0 of 784 elements features drift"));
  std::cout << first.out;

  const CommandResult second = run_command({kiln, "run", pipeline}, env, dir.path());
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("nothing ran: every stage was cached"));
  EXPECT_FALSE(fs::exists(dir / "kiln-registry/mlruns/models/fashion-mnist-mlp/version-2"));

  if (!fs::exists(KILN_PYTHON))
    GTEST_SKIP() << KILN_PYTHON << " is missing (tools/install-deps.sh)";
  const CommandResult check = run_command(
      {KILN_PYTHON, std::string(KILN_SOURCE_DIR) + "/tests/quickstart/check_registry.py",
       (dir / "kiln-registry").string()},
      {{"MLFLOW_ALLOW_FILE_STORE", "true"}});
  // The venv is there, so its clients must be too (tools/install-deps.sh puts them in).
  ASSERT_NE(check.exit_code, 3) << check.err << "(run tools/install-deps.sh)";
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  std::cout << check.out;
}

}  // namespace
}  // namespace kiln::test
