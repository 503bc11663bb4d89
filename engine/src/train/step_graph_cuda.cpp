#ifdef KILN_HAVE_CUDA
#include "train/step_graph.h"

#include <kiln/error.h>

#include <fmt/format.h>

#include <atomic>
#include <map>

#include "ops/activation.h"
#include "tensor/caching_allocator.h"
#include "tensor/cuda_context.h"
#include "tensor/device_memory.h"

namespace kiln::train {
namespace {

CachingAllocator& device_allocator(Device device) {
  // cuda_allocator hands out the device's CachingAllocator (device_memory_cuda.cpp).
  return static_cast<CachingAllocator&>(cuda_allocator(device.index));
}

int next_pool() {
  static std::atomic<int> last{0};
  return ++last;
}

}  // namespace

StepGraph::StepGraph(Device device) : device_(device) {}

StepGraph::~StepGraph() { reset(); }

void StepGraph::reset() {
  if (exec_ != nullptr) {
    // Replays still queued read the pool's memory: let them finish first.
    cudaStreamSynchronize(cuda::stream(device_));
    cudaGraphExecDestroy(exec_);
    cuda::unpin_workspace(device_);
  }
  if (graph_ != nullptr) cudaGraphDestroy(graph_);
  exec_ = nullptr;
  graph_ = nullptr;
  rewritable_.clear();
  if (pool_ != 0) device_allocator(device_).release_pool(pool_);
  pool_ = 0;
}

std::string StepGraph::capture(const std::function<void()>& step) {
  reset();
  const cudaStream_t stream = cuda::stream(device_);
  CachingAllocator& allocator = device_allocator(device_);
  pool_ = next_pool();
  std::string failure;
  ops::StepKernelLog log(ops::StepKernelLog::Mode::Observe);
  // Thread-local mode: only this thread's CUDA calls are checked against capture
  // (the loader's thread never touches CUDA, but a plugin's might).
  cudaError_t status = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (status != cudaSuccess) {
    failure = fmt::format("cudaStreamBeginCapture: {}", cudaGetErrorString(status));
  } else {
    allocator.begin_pool(pool_);
    try {
      step();
    } catch (const std::exception& error) {
      failure = error.what();
    }
    allocator.end_pool();
    status = cudaStreamEndCapture(stream, &graph_);
    if (failure.empty() && status != cudaSuccess)
      failure = fmt::format("cudaStreamEndCapture: {}", cudaGetErrorString(status));
  }
  if (failure.empty()) {
    status = cudaGraphInstantiate(&exec_, graph_, 0);
    if (status == cudaSuccess)
      cuda::pin_workspace(device_);  // the graph's library calls address it
    else {
      exec_ = nullptr;
      failure = fmt::format("cudaGraphInstantiate: {}", cudaGetErrorString(status));
    }
  }
  if (failure.empty()) {
    try {
      failure = check_nodes(log);
    } catch (const std::exception& error) {
      failure = error.what();
    }
  }
  if (!failure.empty()) {
    cudaGetLastError();  // capture errors are not sticky; clear the last one
    reset();
  }
  return failure;
}

// Keeps the nodes a replay rewrites (the launches of kernels with a step-dependent
// argument; every other node is left as captured), and checks that each such
// launch became a node whose arguments can be rewritten.
std::string StepGraph::check_nodes(const ops::StepKernelLog& log) {
  std::size_t count = 0;
  cuda::check(cudaGraphGetNodes(graph_, nullptr, &count), "cudaGraphGetNodes");
  std::vector<cudaGraphNode_t> nodes(count);
  cuda::check(cudaGraphGetNodes(graph_, nodes.data(), &count), "cudaGraphGetNodes");
  std::map<const void*, int> found;
  for (cudaGraphNode_t node : nodes) {
    cudaGraphNodeType type;
    cuda::check(cudaGraphNodeGetType(node, &type), "cudaGraphNodeGetType");
    if (type != cudaGraphNodeTypeKernel) continue;
    KernelNode kernel{node, {}};
    // The libraries' kernels (cuBLASLt, cuDNN) may not describe themselves to the
    // runtime; they are never rewritten, so such a node is simply left alone.
    if (cudaGraphKernelNodeGetParams(node, &kernel.params) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    if (!log.launches().contains(kernel.params.func) || kernel.params.kernelParams == nullptr)
      continue;
    ++found[kernel.params.func];
    rewritable_.push_back(kernel);
  }
  for (const auto& [kernel, launches] : log.launches())
    if (found[kernel] != launches)
      return fmt::format(
          "the graph holds {} rewritable node(s) of a step-dependent kernel launched {} time(s)",
          found[kernel], launches);
  return {};
}

void StepGraph::set_argument(const KernelNode& node, int index, int count, const void* value) {
  std::vector<void*> arguments(node.params.kernelParams, node.params.kernelParams + count);
  arguments[static_cast<std::size_t>(index)] = const_cast<void*>(value);
  cudaKernelNodeParams params = node.params;
  params.kernelParams = arguments.data();
  cuda::check(cudaGraphExecKernelNodeSetParams(exec_, node.node, &params),
              "cudaGraphExecKernelNodeSetParams");
}

void StepGraph::set_arguments(const std::vector<ops::StepArgument>& arguments) {
  for (const ops::StepArgument& argument : arguments)
    for (const KernelNode& node : rewritable_)
      if (node.params.func == argument.kernel)
        set_argument(node, argument.index, argument.count, argument.value.data());
}

void StepGraph::set_dropout_step(std::uint32_t step) {
  const ops::DropoutKernel dropout = ops::dropout_draw_kernel();
  for (const KernelNode& node : rewritable_) {
    if (node.params.func != dropout.kernel) continue;
    // The layer and seed as captured; only the step moves on.
    ops::DropoutDraw draw =
        *static_cast<const ops::DropoutDraw*>(node.params.kernelParams[dropout.draw_index]);
    draw.step = step;
    set_argument(node, dropout.draw_index, dropout.count, &draw);
  }
}

void StepGraph::replay() {
  if (exec_ == nullptr) throw InternalError("StepGraph::replay: nothing captured");
  cuda::check(cudaGraphLaunch(exec_, cuda::stream(device_)), "cudaGraphLaunch");
}

}  // namespace kiln::train
#endif  // KILN_HAVE_CUDA
