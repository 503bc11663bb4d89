#include <kiln/error.h>
#include <kiln/slurm.h>

#include <kiln/child_program.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <sstream>

namespace kiln::slurm {
namespace {

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
    text.pop_back();
  return text;
}

// The last non-empty line of a program's error output, without sbatch's "sbatch:
// error: " prefixes: Slurm's reason.
std::string reason_of(const ProgramResult& result) {
  std::istringstream lines(result.err.empty() ? result.out : result.err);
  std::string line, last;
  while (std::getline(lines, line))
    if (!trim(line).empty()) last = trim(line);
  for (const char* prefix : {"sbatch: error: ", "error: ", "Batch job submission failed: "})
    while (last.rfind(prefix, 0) == 0) last = last.substr(std::string_view(prefix).size());
  return last.empty() ? fmt::format("exit code {}", result.exit_code) : last;
}

}  // namespace

ProgramResult run_program(const std::vector<std::string>& argv) {
  ChildResult child = run_child(argv);
  return {child.exit_code, std::move(child.out), std::move(child.err)};
}

std::string sbatch(const std::filesystem::path& script, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(script.string());
  const ProgramResult result = run_program(argv);
  if (result.exit_code == 127 && result.err.rfind("cannot run", 0) == 0)
    throw StageError(
        fmt::format("sbatch is not on PATH ({}): kiln submit needs Slurm's client "
                    "commands",
                    reason_of(result)));
  if (result.exit_code != 0)
    throw StageError(fmt::format("sbatch refused {}: {}", script.string(), reason_of(result)));
  // --parsable prints "<id>" or "<id>;<cluster>".
  std::string id = trim(result.out);
  id = id.substr(0, id.find(';'));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw StageError(fmt::format("sbatch {}: expected a job id, got '{}'", script.string(), id));
  return id;
}

std::map<std::string, QueueState> queue_states(const std::vector<std::string>& ids) {
  std::map<std::string, QueueState> states;
  if (ids.empty()) return states;
  // %i: the job id (123_4 for array tasks, 123_[5-7] for pending ones), %T: the
  // state, %r: the reason. All jobs, filtered here: squeue --jobs fails as a whole
  // when one of them has left the controller's memory.
  const ProgramResult result =
      run_program({"squeue", "--noheader", "--states=all", "--format=%i|%T|%r"});
  std::istringstream lines(result.out);
  std::string line;
  while (std::getline(lines, line)) {
    const auto first = line.find('|'), second = line.rfind('|');
    if (first == std::string::npos || first == second) continue;
    const std::string id = line.substr(0, first);
    const std::string job = id.substr(0, id.find('_'));
    if (std::find(ids.begin(), ids.end(), id) == ids.end() &&
        std::find(ids.begin(), ids.end(), job) == ids.end())
      continue;
    states[id] = {line.substr(first + 1, second - first - 1), trim(line.substr(second + 1))};
  }
  return states;
}

}  // namespace kiln::slurm
