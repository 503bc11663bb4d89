// Helpers of the registry tests, on top of tests/support/support.h: a listing of a
// tree, and running tests/registry/read_with_mlflow.py with the real MLflow client.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "support/support.h"

namespace kiln::registry::testing {

// Every path below `dir`, relative and sorted (a cheap way to compare trees).
inline std::vector<std::string> tree(const std::filesystem::path& dir) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec))
    paths.push_back(it->path().lexically_relative(dir).generic_string());
  std::sort(paths.begin(), paths.end());
  return paths;
}

// What read_with_mlflow.py printed (JSON on its last line), or why it could not run.
// No KILN_PYTHON (the venv tools/install-deps.sh makes), or a venv without a working
// `import mlflow`, is a failure: the cross-check must not silently drop out of CI.
struct MlflowView {
  nlohmann::json summary;
  std::string skip_reason;
};

inline MlflowView run_mlflow_reader(const std::vector<std::string>& arguments) {
  const std::map<std::string, std::string> env = {{"MLFLOW_ALLOW_FILE_STORE", "true"},
                                                  {"MLFLOW_DISABLE_TELEMETRY", "true"},
                                                  {"DO_NOT_TRACK", "true"}};
  if (!std::filesystem::exists(KILN_PYTHON)) {
    ADD_FAILURE() << KILN_PYTHON " is missing (tools/install-deps.sh makes it)";
    return {nlohmann::json(), KILN_PYTHON " is missing (tools/install-deps.sh makes it)"};
  }
  // Importing mlflow takes seconds: probe once per test process.
  static const kiln::test::CommandResult probe =
      kiln::test::run_command({KILN_PYTHON, "-c", "import mlflow"}, env);
  if (probe.exit_code != 0) {
    ADD_FAILURE() << "`import mlflow` fails with " KILN_PYTHON " (run tools/install-deps.sh): "
                  << probe.err;
    return {nlohmann::json::object(), ""};
  }
  std::vector<std::string> argv = {KILN_PYTHON,
                                   KILN_SOURCE_DIR "/tests/registry/read_with_mlflow.py"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  const auto result = kiln::test::run_command(argv, env);
  const std::size_t last_line = result.out.rfind("\n{");
  const std::size_t json_start = last_line == std::string::npos ? 0 : last_line + 1;
  if (result.exit_code != 0 || result.out.empty() || result.out[json_start] != '{') {
    ADD_FAILURE() << "read_with_mlflow.py exited " << result.exit_code << ": " << result.err;
    return {nlohmann::json::object(), ""};
  }
  return {nlohmann::json::parse(result.out.substr(json_start)), ""};
}

}  // namespace kiln::registry::testing
