// torchrun's agent store, played by torch.distributed.TCPStore in a Python
// process (KILN_PYTHON, which sees Debian's torch 1.13): it serves as master on
// a free port, sets a key of torch's own ("torch_key") and one under kiln's test
// prefix, and, once the test says it is done, reports the keys it is asked about
// as Python sees them (keys expected missing go last). The test then asserts on
// that report.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "formats/python_check.h"
#include "support/support.h"

namespace kiln::test {

inline constexpr const char* kAgentStoreScript = R"(
import os, sys, time
from datetime import timedelta
try:
    import torch
    import torch.distributed as dist
except ImportError as error:
    print(f"torch.distributed is missing: {error}")
    sys.exit(77)
directory, backend, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
options = {} if backend == "default" else {"use_libuv": backend == "libuv"}
store = dist.TCPStore("127.0.0.1", 0, 1, True, **options)
store.set("torch_key", "torch value")
store.set("kiln/test/from_python", "hi")
with open(os.path.join(directory, "port.tmp"), "w") as out:
    out.write(str(store.port))
os.rename(os.path.join(directory, "port.tmp"), os.path.join(directory, "port"))
print(f"torch {torch.__version__} serves a TCPStore on port {store.port}", flush=True)
deadline = time.time() + 900
while not os.path.exists(os.path.join(directory, "done")):
    if time.time() > deadline:
        sys.exit("the test never said it was done")
    time.sleep(0.05)
def present(key):  # torch 1.13 has no TCPStore.check
    try:
        store.wait([key], timedelta(milliseconds=300))
        return True
    except RuntimeError:
        return False
for key in keys:  # a wait that timed out leaves its socket waiting: ask for missing keys last
    if present(key):
        print(f"{key} = {store.get(key)!r}")
    else:
        print(f"{key}: missing")
)";

// One Python process serving the store, stopped by finish() or, failing that, by
// the destructor.
class AgentStore {
 public:
  AgentStore() = default;
  AgentStore(const AgentStore&) = delete;
  AgentStore& operator=(const AgentStore&) = delete;
  ~AgentStore() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // Starts `python` serving with `backend` (default, classic or libuv) and waits
  // for its port; a reason to skip when Python or torch is missing.
  std::optional<std::string> start(const std::string& python, const std::string& backend,
                                   const std::vector<std::string>& report_keys) {
    if (!std::filesystem::exists(python)) return "no Python interpreter at " + python;
    write_text(dir_ / "agent.py", kAgentStoreScript);
    std::vector<std::string> args = {python, (dir_ / "agent.py").string(), dir_.path().string(),
                                     backend};
    args.insert(args.end(), report_keys.begin(), report_keys.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      std::freopen((dir_ / "agent.out").c_str(), "w", stdout);
      std::freopen((dir_ / "agent.err").c_str(), "w", stderr);
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!std::filesystem::exists(dir_ / "port")) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        if (WIFEXITED(status) && WEXITSTATUS(status) == kPythonSkip) return output();
        ADD_FAILURE() << "the agent store exited before serving:\n" << output();
        return std::nullopt;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the agent store did not start within 60 s:\n" << output();
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    port_ = std::stoi(read_text(dir_ / "port"));
    return std::nullopt;
  }

  int port() const { return port_; }

  // Asks for the report and returns it (the process's stdout); fails the test
  // when the process does not exit 0.
  std::string finish() {
    write_text(dir_ / "done", "");
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output();
    return read_text(dir_ / "agent.out");
  }

  std::string output() const {
    return read_text(dir_ / "agent.out") + read_text(dir_ / "agent.err");
  }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace kiln::test
