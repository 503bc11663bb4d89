// Runs the kiln executable on a pseudo-terminal (forkpty), for what kiln does only
// on a terminal: the live progress line, colour.
#pragma once

#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln::test {

// Runs kiln with stdout and stderr on a pseudo-terminal; returns all it wrote.
inline std::string run_on_terminal(const std::vector<std::string>& argv,
                                   const std::map<std::string, std::string>& env,
                                   const std::filesystem::path& cwd) {
  int terminal = -1;
  const pid_t pid = ::forkpty(&terminal, nullptr, nullptr, nullptr);
  if (pid == 0) {
    for (const auto& [key, value] : env) ::setenv(key.c_str(), value.c_str(), 1);
    ::unsetenv("KILN_PLAIN_PROGRESS");
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  std::string output;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(terminal, buffer, sizeof buffer);
    if (n <= 0) break;  // EIO once the child has exited and closed the terminal
    output.append(buffer, static_cast<std::size_t>(n));
  }
  ::waitpid(pid, nullptr, 0);
  ::close(terminal);
  return output;
}

}  // namespace kiln::test
