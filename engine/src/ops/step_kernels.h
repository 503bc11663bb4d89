// Private to the engine, CUDA builds only: the kernels of a training step whose
// arguments change from one step to the next, for the trainer's CUDA graph
// (train/step_graph.h). A graph replays the arguments it captured, so before each
// replay these are rewritten: the optimizer's scalars (learning rate, bias
// corrections) and dropout's step. No other argument of a steady-state step
// changes: addresses are fixed by the graph's memory pool, and shapes by the full
// batch.
#pragma once

#ifdef KILN_HAVE_CUDA

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace kiln::ops {

// One argument of a kernel (its host stub, as cudaLaunchKernel and graph nodes
// name it): argument `index` of `count`, and its bytes.
struct StepArgument {
  const void* kernel = nullptr;
  int index = 0, count = 0;
  std::vector<std::byte> value;
};

// While one is alive on a thread, the CUDA launchers of step-dependent kernels
// report to it. Observe: they launch as usual, and the log counts their launches
// (what a captured graph must contain). Defer: the optimizer launchers record
// their scalars and launch nothing (a replay needs this step's scalars, not a
// launch; the optimizer's own bookkeeping still advances).
class StepKernelLog {
 public:
  enum class Mode { Observe, Defer };
  explicit StepKernelLog(Mode mode);
  ~StepKernelLog();
  StepKernelLog(const StepKernelLog&) = delete;
  StepKernelLog& operator=(const StepKernelLog&) = delete;

  const std::vector<StepArgument>& deferred() const { return deferred_; }
  const std::map<const void*, int>& launches() const { return launches_; }

  // For the launchers. True when the launch is to be skipped (Defer mode).
  static bool defer(const void* kernel, int index, int count, const void* value, std::size_t size);
  static void launched(const void* kernel);

 private:
  Mode mode_;
  StepKernelLog* previous_;
  std::vector<StepArgument> deferred_;
  std::map<const void*, int> launches_;
};

// Dropout's forward kernel and where its DropoutDraw argument sits.
struct DropoutKernel {
  const void* kernel;
  int draw_index, count;
};
DropoutKernel dropout_draw_kernel();

}  // namespace kiln::ops

#endif  // KILN_HAVE_CUDA
