#include <kiln/error.h>
#include <kiln/progress.h>
#include <kiln/run_log.h>
#include <kiln/stage.h>

#include <fmt/format.h>

namespace kiln {

StageContext::~StageContext() = default;
dist::ProcessGroup* StageContext::process_group() const { return nullptr; }
StageRegistrar::~StageRegistrar() = default;
RunLog::~RunLog() = default;
Progress::~Progress() = default;

const Artifact* StageContext::find_input(std::string_view kind) const {
  const Artifact* found = nullptr;
  for (const auto& artifact : inputs()) {
    if (artifact.kind != kind) continue;
    if (found != nullptr)
      throw StageError(fmt::format(
          "stage '{}' needs one input of kind '{}' but gets two: from '{}' and from '{}'", name(),
          kind, found->producer, artifact.producer));
    found = &artifact;
  }
  return found;
}

const Artifact& StageContext::input(std::string_view kind) const {
  if (const Artifact* artifact = find_input(kind)) return *artifact;
  std::string present;
  for (const auto& artifact : inputs())
    present += fmt::format("{}{} (from '{}')", present.empty() ? "" : ", ", artifact.kind,
                           artifact.producer);
  throw StageError(fmt::format("stage '{}' needs an input of kind '{}'; its `needs` give {}",
                               name(), kind, present.empty() ? "nothing" : present));
}

}  // namespace kiln
