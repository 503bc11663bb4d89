#include "stage_context.h"

#include "core/console.h"
#include "interrupt.h"

#include <kiln/error.h>

#include <fmt/format.h>

namespace kiln {

RunnerStageContext::RunnerStageContext(const PipelineStage& stage, std::vector<Artifact> inputs,
                                       std::filesystem::path work_dir,
                                       std::filesystem::path resume_dir,
                                       std::filesystem::path registry_root, RunRecord& record,
                                       const Placement& placement, dist::ProcessGroup* group,
                                       std::function<bool()> stop_hook)
    : stage_(stage),
      inputs_(std::move(inputs)),
      work_dir_(std::move(work_dir)),
      resume_dir_(std::move(resume_dir)),
      registry_root_(std::move(registry_root)),
      record_(record),
      placement_(placement),
      group_(group),
      stop_hook_(std::move(stop_hook)),
      progress_(make_progress(stage.name)) {}

void RunnerStageContext::emit(Artifact output) {
  if (output.name.empty() || output.kind.empty())
    throw StageError(fmt::format("stage '{}' emitted an output without a name or kind", name()));
  for (const auto& existing : outputs_)
    if (existing.name == output.name)
      throw StageError(fmt::format("stage '{}' emitted output '{}' twice", name(), output.name));
  outputs_.push_back(std::move(output));
}

bool RunnerStageContext::stop_requested() const {
  return interrupt_requested() || (stop_hook_ && stop_hook_());
}

}  // namespace kiln
