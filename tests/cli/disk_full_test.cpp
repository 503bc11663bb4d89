// A run whose disk fills mid-training (a real tmpfs, ENOSPC from the kernel): one
// clear error; the registry stays readable by kiln and by MLflow with nothing
// half-written in it; after space is freed the same command finishes the pipeline.
#include <gmock/gmock.h>
#include <sys/wait.h>

#include "registry_cli_support.h"
#include "support/tmpfs.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr const char* kEpochs = "train.with.epochs=40";

class DiskFullTest : public CliTest {
 protected:
  void SetUp() override {
    if (const auto why = Tmpfs::why_not(); !why.empty()) FAIL() << why;  // CI runs as root
    CliTest::SetUp();
    disk_.emplace(dir_ / "disk", 32);
  }
  void TearDown() override { disk_.reset(); }  // before dir_ goes

  fs::path registry_root() const { return *disk_ / "registry"; }

  CommandResult kiln_here(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(KILN_BINARY_DIR) + "/bin/kiln");
    return run_command(args, {{"KILN_REGISTRY", registry_root().string()}}, dir_.path());
  }

  void free_space() { fs::remove(*disk_ / "filler"); }

  std::optional<Tmpfs> disk_;
};

// Every line of every metric file is whole: three fields and a newline.
void expect_whole_metric_lines(const fs::path& mlruns) {
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(mlruns)) {
    const std::string path = entry.path().generic_string();
    if (!entry.is_regular_file() || path.find("/metrics/") == std::string::npos) continue;
    ++files;
    const std::string text = read_text(entry.path());
    ASSERT_FALSE(text.empty()) << entry.path();
    EXPECT_EQ(text.back(), '\n') << entry.path() << " ends in a partial line";
    for (const auto& line : lines_of(text))
      EXPECT_THAT(line, ::testing::MatchesRegex("[0-9]+ [^ ]+ [0-9]+")) << entry.path();
  }
  EXPECT_GT(files, 0);
}

TEST_F(DiskFullTest, ARunThatFillsTheDiskFailsOnceClearlyAndResumesAfterSpaceIsFreed) {
  const fs::path err_file = dir_ / "stderr.txt";
  const pid_t pid = spawn_kiln({"run", "p.yaml", kEpochs}, dir_.path(), registry_root(), err_file);
  const ChildGuard guard(pid);
  ASSERT_TRUE(wait_for([&] {
    return read_text(err_file).find("train  epoch") != std::string::npos;
  })) << read_text(err_file);
  disk_->fill("filler");  // beside the registry
  int status = 0;
  ::waitpid(pid, &status, 0);
  const std::string err = read_text(err_file);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << "\n" << err;
  EXPECT_NE(WEXITSTATUS(status), 0) << err;
  EXPECT_NE(WEXITSTATUS(status), 1) << "a crash, not a clean error\n" << err;
  const auto lines = lines_of(err);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(), ::testing::StartsWith("kiln: ")) << err;
  EXPECT_THAT(lines.back(), HasSubstr("No space left on device")) << err;

  // Readable while the disk is still full.
  const CommandResult ls = kiln_here({"registry", "ls"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  expect_whole_metric_lines(registry_root() / "mlruns");
  const auto view = registry::testing::run_mlflow_reader(
      {"dump", (registry_root() / "mlruns").string(), "synthetic"});
  ASSERT_TRUE(view.summary.contains("runs")) << view.summary.dump();
  EXPECT_EQ(view.summary["runs"].size(), 1u);
  for (const auto& entry : fs::recursive_directory_iterator(registry_root()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos)
        << "a temporary left behind: " << entry.path();

  free_space();
  const CommandResult again = kiln_here({"run", "p.yaml", kEpochs});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("register: synthetic-mlp version 1"));
  EXPECT_EQ(kiln_here({"registry", "ls"}).exit_code, 0);
  expect_whole_metric_lines(registry_root() / "mlruns");
}

}  // namespace
}  // namespace kiln::test
