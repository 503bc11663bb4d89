// Cross-checks against the Python ecosystem (numpy, torch, safetensors in the
// project's .venv, KILN_PYTHON): a test writes a small script and runs it. A
// missing venv or module fails the test with the script's reason: tools/install-deps.sh
// makes the venv, and a skip would let CI pass without the cross-check.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "support/support.h"

namespace kiln::test {

// A script exits with this code, after printing why, when a module it needs is missing.
inline constexpr const char* kMakeTheVenv = "run tools/install-deps.sh to make " KILN_PYTHON;
inline constexpr int kPythonSkip = 77;

inline bool python_available() { return std::filesystem::exists(KILN_PYTHON); }

inline CommandResult run_python_script(const std::filesystem::path& dir, const std::string& script,
                                       const std::vector<std::string>& args) {
  const auto script_path = dir / "check.py";
  write_text(script_path, script);
  std::vector<std::string> argv{KILN_PYTHON, script_path.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

}  // namespace kiln::test

// KILN_RUN_PYTHON_CHECK(dir, script, {args...}): fails the test when Python or a
// module is missing (saying how to make the venv), or when the script fails.
#define KILN_RUN_PYTHON_CHECK(dir, script, ...)                                             \
  do {                                                                                      \
    if (!::kiln::test::python_available()) GTEST_FAIL() << ::kiln::test::kMakeTheVenv;      \
    const auto kiln_python =                                                                \
        ::kiln::test::run_python_script(dir, script, std::vector<std::string> __VA_ARGS__); \
    if (kiln_python.exit_code == ::kiln::test::kPythonSkip)                                 \
      GTEST_FAIL() << kiln_python.out << kiln_python.err << ::kiln::test::kMakeTheVenv;     \
    ASSERT_EQ(kiln_python.exit_code, 0) << kiln_python.out << kiln_python.err;              \
  } while (0)
