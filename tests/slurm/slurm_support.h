// The fixture of the Slurm tests: a synthetic pipeline in a temporary directory
// (cli_fixture.h), a local Slurm cluster of its own, and kiln run against both.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <regex>

#include "dist/dist_support.h"
#include "slurm/slurm_cluster.h"

namespace kiln::test {

class SlurmTest : public CliTest {
 protected:
  void SetUp() override {
    // Not a skip: the install step installs slurm-wlm and CI runs as root (DEVELOPERS.md).
    if (const std::string why = SlurmCluster::why_not(); !why.empty()) FAIL() << why;
    CliTest::SetUp();
    cluster_ = std::make_unique<SlurmCluster>(dir_ / "slurm");
  }

  std::map<std::string, std::string> env() const {
    std::map<std::string, std::string> env = cluster_->env();
    env["KILN_REGISTRY"] = registry().string();
    env["KILN_PLAIN_PROGRESS"] = "1";
    return env;
  }

  CommandResult kiln_slurm(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(KILN_BINARY_DIR) + "/bin/kiln");
    return run_command(args, env(), dir_.path());
  }

  CommandResult slurm(const std::vector<std::string>& argv) {
    return run_command(argv, cluster_->env(), dir_.path());
  }

  // "submitted <role> job <id>" lines of kiln submit: role -> id.
  static std::map<std::string, std::string> submitted(const CommandResult& result) {
    std::map<std::string, std::string> ids;
    const std::regex line(R"(submitted (\w+) job (\d+))");
    for (auto it = std::sregex_iterator(result.out.begin(), result.out.end(), line);
         it != std::sregex_iterator(); ++it)
      ids[(*it)[1]] = (*it)[2];
    return ids;
  }

  // The one submission directory of the registry.
  std::filesystem::path submission_dir() const {
    for (const auto& entry : std::filesystem::directory_iterator(registry() / "jobs"))
      if (std::filesystem::exists(entry.path() / "job.json")) return entry.path();
    ADD_FAILURE() << "no submission in " << registry() / "jobs";
    return {};
  }

  // Every job log of the submission, for failure messages.
  std::string job_logs() const {
    std::string logs;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(registry() / "jobs", ec))
      for (const auto& file : std::filesystem::directory_iterator(entry.path(), ec))
        if (file.path().extension() == ".out" || file.path().filename() == "events.jsonl")
          logs += "==> " + file.path().string() + "\n" + read_text(file.path());
    return logs;
  }

  static bool finished(const std::string& state) {
    for (const char* end : {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
                            "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"})
      if (state.rfind(end, 0) == 0) return true;
    return false;
  }

  // Waits until squeue shows `job` (all its tasks) ended; returns the state.
  std::string wait_done(const std::string& job, int seconds = 300) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    std::string state;
    while (std::chrono::steady_clock::now() < deadline) {
      state = cluster_->state(job);
      std::istringstream lines(state);
      std::string line;
      bool all = !state.empty();
      while (std::getline(lines, line)) all = all && finished(line);
      if (all) return state;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ADD_FAILURE() << "job " << job << " still '" << state << "' after " << seconds << " s\n"
                  << job_logs();
    return state;
  }

  // Waits until `predicate` holds; false after `seconds`.
  template <typename Predicate>
  static bool wait_until(Predicate predicate, int seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if (predicate()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  std::vector<nlohmann::json> events() const {
    std::vector<nlohmann::json> events;
    std::istringstream lines(read_text(submission_dir() / "events.jsonl"));
    std::string line;
    while (std::getline(lines, line))
      if (!line.empty()) events.push_back(nlohmann::json::parse(line));
    return events;
  }

  std::unique_ptr<SlurmCluster> cluster_;
};

}  // namespace kiln::test
