// Running another program and reading its output as it comes: the Slurm client
// commands, the HDF5 reader process that keeps libhdf5's crashes on damaged files
// out of kiln (data/hdf5_reader_process.h), and the programs `kiln bench` measures.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct ChildOptions {
  // Called with each piece of the program's standard output as it arrives; when
  // unset, the output is collected in ChildResult::out. An exception it throws
  // kills the program and propagates.
  std::function<void(std::string_view)> on_output;
  // Kill the program (SIGKILL) when it writes nothing and does not end for this
  // long; unset: wait as long as it takes.
  std::optional<std::chrono::milliseconds> idle_timeout;
  std::size_t max_error_bytes = 64 * 1024;  // the rest of its standard error is dropped
};

struct ChildResult {
  int exit_code = -1;  // 128 + signal when it was killed; 127 when it could not start
  int signal = 0;      // the signal that ended it, 0 if it exited
  bool timed_out = false;
  std::string out, err;
};

// Runs argv (argv[0] looked up on PATH when it has no '/'), standard input
// /dev/null, and waits for it to end. Never throws for the program's own failure;
// the caller reads ChildResult.
ChildResult run_child(const std::vector<std::string>& argv, const ChildOptions& options = {});

// The last line of a program's output, trailing newlines ignored: where most
// programs say why they failed.
std::string last_line(std::string_view text);

// "SIGSEGV", "SIGKILL", ... or "signal N".
std::string signal_name(int signal);

}  // namespace kiln
