// `kiln run`'s alerts: the pipeline's `on_failure:` command (docs/cli.md, "Alerts").
// When the run fails, rank 0 runs the command once, with the failure in its
// environment (KILN_FAILED_STAGE, KILN_ERROR, KILN_EXIT_CODE, ...), in the pipeline
// file's directory, and waits for it at most on_failure_timeout_s. Whatever the
// command does, kiln's own error line and exit code stay as they were; a command
// that fails, hangs or cannot start costs one warning line. An interrupted run
// (exit 130) runs nothing: the person who pressed Ctrl-C, or the scheduler that
// sent SIGTERM, already knows.
#pragma once

#include <kiln/pipeline.h>
#include <kiln/runner.h>

#include <exception>
#include <filesystem>
#include <string>

namespace kiln::cli {

class FailureHook {
 public:
  // Inert on ranks other than 0 and for a pipeline without `on_failure:`.
  FailureHook(const PipelineSource& source, const std::filesystem::path& registry, int rank);
  FailureHook(const FailureHook&) = delete;
  FailureHook& operator=(const FailureHook&) = delete;

  // Sets `hooks` to note the run id and the failed stage for the command.
  void watch(RunHooks& hooks);

  // body(), and when it throws, the command runs before the error goes on.
  template <typename Body>
  auto guard(Body&& body) -> decltype(body()) {
    try {
      return body();
    } catch (...) {
      failed(std::current_exception());
      throw;
    }
  }

 private:
  void failed(std::exception_ptr error) noexcept;

  FailureCommand command_;
  std::string pipeline_name_;
  std::filesystem::path pipeline_file_;  // absolute
  std::filesystem::path registry_;       // absolute
  bool armed_ = false;
  std::string run_id_;
  std::string failed_stage_;
};

}  // namespace kiln::cli
