// Private to train, CUDA builds only: the steady-state training step captured once
// as a CUDA graph and replayed (docs/ARCHITECTURE.md, "Ops and devices"), which
// replaces a step's few hundred kernel launches by one. What a replay cannot
// capture, the trainer keeps outside: the batch is copied into fixed input tensors
// before each replay, and the arguments that change from step to step (the
// optimizer's scalars, dropout's step; see ops/step_kernels.h) are rewritten in the
// instantiated graph before it is launched (cudaGraphExecKernelNodeSetParams:
// launches already queued keep theirs). Every block the step allocates while
// captured comes from a private pool of the device's caching allocator, so nothing
// else can be handed the memory the graph's kernels address.
#pragma once

#ifdef KILN_HAVE_CUDA

#include <kiln/tensor/device.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ops/step_kernels.h"

namespace kiln::train {

class StepGraph {
 public:
  explicit StepGraph(Device device);
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Records `step`, which enqueues one training step on the device's stream and
  // never waits for the device, into a graph; the step is recorded, not run (call
  // replay). On failure (CUDA refused a call while capturing, or the graph lacks a
  // kernel it must be able to rewrite) returns the reason and leaves no graph.
  std::string capture(const std::function<void()>& step);
  bool ready() const noexcept { return exec_ != nullptr; }

  // Before a replay: the optimizer's scalars for it (arguments deferred by a
  // StepKernelLog), and the step number dropout draws with.
  void set_arguments(const std::vector<ops::StepArgument>& arguments);
  void set_dropout_step(std::uint32_t step);
  void replay();

 private:
  struct KernelNode {
    cudaGraphNode_t node;
    cudaKernelNodeParams params;  // as captured
    const void* kernel;           // the host stub its launcher named (params.func may differ)
  };
  std::string check_nodes(const ops::StepKernelLog& log);
  void set_argument(const KernelNode& node, const ops::StepParameter& parameter, const void* value);
  void reset();

  Device device_;
  int pool_ = 0;  // the caching allocator's private pool, 0 when none
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  std::vector<KernelNode> rewritable_;  // the step-dependent kernels' nodes
};

}  // namespace kiln::train

#endif  // KILN_HAVE_CUDA
