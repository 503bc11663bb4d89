// Private to the engine, CUDA builds only: the kernels of a training step whose
// arguments change from one step to the next, for the trainer's CUDA graph
// (train/step_graph.h). A graph replays the arguments it captured, so before each
// replay these are rewritten: the optimizer's scalars (learning rate, bias
// corrections) and dropout's step. No other argument of a steady-state step
// changes: addresses are fixed by the graph's memory pool, and shapes by the full
// batch.
#pragma once

#ifdef KILN_HAVE_CUDA

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::ops {

// One argument of a kernel (its host stub, as cudaLaunchKernel and graph nodes
// name it): argument `index` of `count`, and its bytes.
struct StepArgument {
  const void* kernel = nullptr;
  int index = 0, count = 0;
  std::vector<std::byte> value;
};

// One launch of a step-dependent kernel while a step is captured: the graph node
// it became, and where its step-dependent argument sits (argument `index` of
// `count`, `size` bytes). The node is taken from the capturing stream right after
// the launch (its dependency set is then that node alone), so finding it relies on
// nothing a driver may name differently, such as the kernel's handle in the node.
struct StepLaunch {
  const void* kernel = nullptr;
  cudaGraphNode_t node = nullptr;  // nullptr: not captured, `problem` says why
  int index = 0, count = 0;
  std::size_t size = 0;
  std::string problem;
};

// While one is alive on a thread, the CUDA launchers of step-dependent kernels
// report to it. Observe: they launch as usual, and the log keeps each launch's
// graph node (what a captured graph must let a replay rewrite). Defer: the
// optimizer launchers record their scalars and launch nothing (a replay needs this
// step's scalars, not a launch; the optimizer's own bookkeeping still advances).
class StepKernelLog {
 public:
  enum class Mode { Observe, Defer };
  explicit StepKernelLog(Mode mode);
  ~StepKernelLog();
  StepKernelLog(const StepKernelLog&) = delete;
  StepKernelLog& operator=(const StepKernelLog&) = delete;

  const std::vector<StepArgument>& deferred() const { return deferred_; }
  const std::vector<StepLaunch>& launches() const { return launches_; }

  // For the launchers. True when the launch is to be skipped (Defer mode).
  static bool defer(const void* kernel, int index, int count, const void* value, std::size_t size);
  // Right after `kernel` was launched on `stream`, with the step-dependent
  // argument a replay rewrites.
  static void launched(const void* kernel, cudaStream_t stream, int index, int count,
                       std::size_t size);

 private:
  Mode mode_;
  StepKernelLog* previous_;
  std::vector<StepArgument> deferred_;
  std::vector<StepLaunch> launches_;
};

// Dropout's forward kernel and where its DropoutDraw argument sits.
struct DropoutKernel {
  const void* kernel;
  int draw_index, count;
};
DropoutKernel dropout_draw_kernel();

}  // namespace kiln::ops

#endif  // KILN_HAVE_CUDA
