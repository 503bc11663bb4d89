// Private to the runner: the StageContext a stage runs with.
#pragma once

#include "run_record.h"

#include <kiln/pipeline.h>
#include <kiln/stage.h>

#include <functional>
#include <memory>

namespace kiln {

class RunnerStageContext final : public StageContext {
 public:
  RunnerStageContext(const PipelineStage& stage, std::vector<Artifact> inputs,
                     std::filesystem::path work_dir, std::filesystem::path resume_dir,
                     std::filesystem::path registry_root, RunRecord& record,
                     const Placement& placement, dist::ProcessGroup* group = nullptr,
                     std::function<bool()> stop_hook = {});

  const std::string& name() const override { return stage_.name; }
  const std::string& type() const override { return stage_.type->name; }
  const Params& params() const override { return stage_.params; }
  const std::vector<Artifact>& inputs() const override { return inputs_; }
  const std::filesystem::path& work_dir() const override { return work_dir_; }
  const std::filesystem::path& resume_dir() const override { return resume_dir_; }
  void emit(Artifact output) override;
  const std::filesystem::path& registry_root() const override { return registry_root_; }
  RunLog& run() override { return record_.get(); }
  Progress& progress() override { return *progress_; }
  bool stop_requested() const override;
  const Placement& placement() const override { return placement_; }
  dist::ProcessGroup* process_group() const override { return group_; }

  std::vector<Artifact> take_outputs() { return std::move(outputs_); }

 private:
  const PipelineStage& stage_;
  std::vector<Artifact> inputs_;
  std::vector<Artifact> outputs_;
  std::filesystem::path work_dir_;
  std::filesystem::path resume_dir_;
  std::filesystem::path registry_root_;
  RunRecord& record_;
  Placement placement_;
  dist::ProcessGroup* group_;
  std::function<bool()> stop_hook_;
  std::unique_ptr<Progress> progress_;
};

}  // namespace kiln
