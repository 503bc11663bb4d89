// Helpers of the sweep journal tests: kiln's view of a study in the JSON shape
// optuna_journal.py prints, and running that script with the real Optuna.
#pragma once

#include <gtest/gtest.h>
#include <kiln/error.h>
#include <kiln/sweep/journal.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/support.h"

namespace kiln::sweep::testing {

inline constexpr const char* kScript = KILN_SOURCE_DIR "/tests/sweep_journal/optuna_journal.py";

inline std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// A study as optuna_journal.py's `view` prints it: external parameter values,
// Optuna's distribution JSON, NaN intermediates as "nan", times or null.
inline nlohmann::json view(const Study& study) {
  nlohmann::json trials = nlohmann::json::array();
  for (const Trial& trial : study.trials) {
    nlohmann::json params = nlohmann::json::object();
    nlohmann::json distributions = nlohmann::json::object();
    for (const auto& [name, internal] : trial.params) {
      params[name] = to_external(trial.distributions.at(name), internal);
      distributions[name] = optuna_distribution_json(trial.distributions.at(name));
    }
    nlohmann::json intermediate = nlohmann::json::object();
    for (const auto& [step, value] : trial.intermediate)
      intermediate[std::to_string(step)] =
          std::isnan(value) ? nlohmann::json("nan") : nlohmann::json(value);
    const auto time = [](const std::string& text) {
      return text.empty() ? nlohmann::json() : nlohmann::json(text);
    };
    trials.push_back({{"number", trial.number},
                      {"state", to_string(trial.state)},
                      {"params", params},
                      {"distributions", distributions},
                      {"value", trial.value ? nlohmann::json(*trial.value) : nlohmann::json()},
                      {"intermediate", intermediate},
                      {"user_attrs", trial.user_attrs},
                      {"system_attrs", trial.system_attrs},
                      {"datetime_start", time(trial.datetime_start)},
                      {"datetime_complete", time(trial.datetime_complete)}});
  }
  return {{"direction", upper(to_string(study.direction))},
          {"user_attrs", study.user_attrs},
          {"system_attrs", study.system_attrs},
          {"trials", trials}};
}

struct OptunaResult {
  nlohmann::json json;  // the last line the script printed
  std::string skip_reason;
  int exit_code = 0;
  std::string output;
};

// Runs optuna_journal.py; a missing venv or a venv without optuna is a failure
// (tools/install-deps.sh makes both).
inline OptunaResult run_optuna(const std::vector<std::string>& arguments,
                               bool expect_success = true) {
  if (!std::filesystem::exists(KILN_PYTHON))
    return {nlohmann::json(), KILN_PYTHON " is missing (tools/install-deps.sh makes it)"};
  std::vector<std::string> argv = {KILN_PYTHON, kScript};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  // UTC: Optuna turns journal times into naive local times.
  const auto result = kiln::test::run_command(argv, {{"TZ", "UTC"}});
  OptunaResult out{nlohmann::json(), "", result.exit_code, result.out + result.err};
  if (result.exit_code == 77) {
    ADD_FAILURE() << "optuna is missing from " KILN_PYTHON " (run tools/install-deps.sh): "
                  << result.out;
    return out;
  }
  if (result.exit_code != 0) {
    if (expect_success)
      ADD_FAILURE() << "optuna_journal.py exited " << result.exit_code << ": " << result.err;
    return out;
  }
  const auto lines = kiln::test::lines_of(result.out);
  if (!lines.empty()) out.json = nlohmann::json::parse(lines.back(), nullptr, false);
  return out;
}

#define KILN_REQUIRE_PYTHON(result) \
  if (!(result).skip_reason.empty()) GTEST_FAIL() << (result).skip_reason

// Appends bytes as a foreign (or dying) writer would, without kiln's lock.
inline void append_raw(const std::filesystem::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary | std::ios::app) << text;
}

// The ops of a journal file, one parsed line each (test-side: the file must be
// plain JSON, which kiln's lines are unless a value is NaN).
inline std::vector<nlohmann::json> ops_of(const std::filesystem::path& file) {
  std::vector<nlohmann::json> ops;
  for (const std::string& line : kiln::test::lines_of(kiln::test::read_text(file)))
    ops.push_back(nlohmann::json::parse(line));
  return ops;
}

}  // namespace kiln::sweep::testing
