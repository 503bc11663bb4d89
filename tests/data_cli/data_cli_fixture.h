// Runs the real kiln executable against a registry in a temporary directory, with
// helpers for the checks every bad-input test shares.
#pragma once

#include "data/data_test_support.h"
#include "data/npy_support.h"
#include "support/support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::test {

class DataCliTest : public ::testing::Test {
 protected:
  CommandResult kiln(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(KILN_BINARY_DIR) + "/bin/kiln");
    return run_command(args, {{"KILN_REGISTRY", registry().string()}, {"KILN_PLAIN_PROGRESS", "1"}},
                       dir_.path());
  }
  std::filesystem::path registry() const { return dir_ / "registry"; }
  std::filesystem::path datasets() const { return registry() / "datasets"; }

  // Dataset files in the store (complete ones: <id>.h5), and anything else there
  // but the lock file (a half-written temporary would show up here).
  std::size_t stored_versions() const {
    std::size_t count = 0;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(datasets(), ec), end; !ec && it != end; ++it)
      count += it->path().extension() == ".h5" ? 1 : 0;
    return count;
  }
  std::vector<std::string> leftovers() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(datasets(), ec), end; !ec && it != end; ++it)
      if (it->path().extension() != ".h5" && it->path().filename() != ".lock")
        names.push_back(it->path().filename().string());
    return names;
  }

  // `kiln data import ARGS...` must fail with `exit_code`, print one error line
  // (returned) and nothing on stdout, and leave the store as it was.
  std::string import_fails(std::vector<std::string> args, int exit_code = 3) {
    const std::size_t before = stored_versions();
    args.insert(args.begin(), {"data", "import"});
    const CommandResult result = kiln(args);
    EXPECT_EQ(result.exit_code, exit_code) << result.err;
    EXPECT_EQ(result.out, "");
    const auto lines = lines_of(result.err);
    EXPECT_EQ(lines.size(), 1u) << result.err;
    EXPECT_EQ(stored_versions(), before);
    EXPECT_THAT(leftovers(), ::testing::IsEmpty());
    return lines.empty() ? "" : lines.back();
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const data::testing::Bytes& bytes) const {
    data::testing::write_bytes(dir_ / name, bytes);
  }

  TempDir dir_;
};

}  // namespace kiln::test
