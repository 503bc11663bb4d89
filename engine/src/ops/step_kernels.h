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
#include <type_traits>
#include <vector>

namespace kiln::ops {

// A kernel argument that a replay rewrites, declared by name and type with
// step_parameter(): its position and the kernel's argument count are read off the
// kernel's own signature, so reordering the kernel's parameters moves them along,
// and the capture checks both, and the size, against the compiled kernel
// (cudaFuncGetParamInfo; train/step_graph_cuda.cpp).
struct StepParameter {
  const void* kernel = nullptr;  // the host stub, as cudaLaunchKernel and graph nodes name it
  const char* name = "";         // the parameter's name in the kernel, for errors
  int index = 0, count = 0;      // argument `index` of `count`
  std::size_t size = 0;          // its bytes
};

namespace step_detail {
// The position of the one parameter of type T; -1 for none, -2 for several.
template <class T, class... Params>
constexpr int position_of() {
  constexpr bool same[] = {std::is_same_v<Params, T>...};
  int position = -1;
  for (int i = 0; i < static_cast<int>(sizeof...(Params)); ++i)
    if (same[i]) position = position == -1 ? i : -2;
  return position;
}
}  // namespace step_detail

// The parameter `name` of `kernel`, the kernel's one parameter of type T:
//   step_parameter<DropoutDraw>(dropout_forward_kernel, "draw")
template <class T, class... Params>
StepParameter step_parameter(void (*kernel)(Params...), const char* name) {
  constexpr int position = step_detail::position_of<T, Params...>();
  static_assert(position >= 0, "a rewritable parameter is the kernel's one parameter of its type");
  return {reinterpret_cast<const void*>(kernel), name, position,
          static_cast<int>(sizeof...(Params)), sizeof(T)};
}

// A rewritable argument's value for the next replay.
struct StepArgument {
  StepParameter parameter;
  std::vector<std::byte> value;
};

// One launch of a step-dependent kernel while a step is captured: the graph node
// it became, and its rewritable parameter. The node is taken from the capturing
// stream right after the launch (its dependency set is then that node alone), so
// finding it relies on nothing a driver may name differently, such as the kernel's
// handle in the node.
struct StepLaunch {
  StepParameter parameter;
  cudaGraphNode_t node = nullptr;  // nullptr: not captured, `problem` says why
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
  // `value` holds parameter.size bytes.
  static bool defer(const StepParameter& parameter, const void* value);
  // Right after parameter.kernel was launched on `stream`.
  static void launched(const StepParameter& parameter, cudaStream_t stream);

 private:
  Mode mode_;
  StepKernelLog* previous_;
  std::vector<StepArgument> deferred_;
  std::vector<StepLaunch> launches_;
};

// Dropout's forward kernel and its DropoutDraw argument (which carries the step).
StepParameter dropout_draw_parameter();

}  // namespace kiln::ops

#endif  // KILN_HAVE_CUDA
