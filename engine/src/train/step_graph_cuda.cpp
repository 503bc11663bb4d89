#ifdef KILN_HAVE_CUDA
#include "train/step_graph.h"

#include <kiln/error.h>

#include <fmt/format.h>

#include <atomic>
#include <string>

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

// A kernel's name for a message: its symbol where the runtime knows it.
std::string kernel_name(const void* kernel) {
  const char* name = nullptr;
  if (cudaFuncGetName(&name, kernel) == cudaSuccess && name != nullptr) return name;
  cudaGetLastError();
  return fmt::format("kernel {}", kernel);
}

// A replay writes parameter.size bytes as argument `index` of `count`, as the
// kernel's declaration placed them (ops::step_parameter): the compiled kernel must
// take exactly `count` arguments, that one `size` bytes long, or the rewrite would
// put its bytes beside the argument.
std::string check_argument_layout(const ops::StepParameter& p) {
  std::size_t offset = 0, size = 0;
  const auto parameter = [&](int index) {
    const cudaError_t status =
        cudaFuncGetParamInfo(p.kernel, static_cast<std::size_t>(index), &offset, &size);
    cudaGetLastError();  // past the last argument is an expected error
    return status == cudaSuccess;
  };
  if (!parameter(p.count - 1) || parameter(p.count))
    return fmt::format("{} does not take the {} arguments its step rewrite of '{}' assumes",
                       kernel_name(p.kernel), p.count, p.name);
  if (!parameter(p.index) || size != p.size)
    return fmt::format("argument {} ('{}') of {} is {} bytes, not the {} its step rewrite writes",
                       p.index, p.name, kernel_name(p.kernel), size, p.size);
  return {};
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
// argument, as the capture recorded them; every other node is left as captured),
// and checks that each is a kernel node whose arguments can be rewritten.
std::string StepGraph::check_nodes(const ops::StepKernelLog& log) {
  for (const ops::StepLaunch& launch : log.launches()) {
    const void* const kernel_stub = launch.parameter.kernel;
    if (launch.node == nullptr)
      return fmt::format("a launch of {} did not become a graph node: {}", kernel_name(kernel_stub),
                         launch.problem);
    cudaGraphNodeType type;
    cuda::check(cudaGraphNodeGetType(launch.node, &type), "cudaGraphNodeGetType");
    if (type != cudaGraphNodeTypeKernel)
      return fmt::format("the launch of {} became a graph node of type {}, not a kernel node",
                         kernel_name(kernel_stub), static_cast<int>(type));
    KernelNode kernel{launch.node, {}, kernel_stub};
    if (cudaGraphKernelNodeGetParams(launch.node, &kernel.params) != cudaSuccess ||
        kernel.params.kernelParams == nullptr) {
      cudaGetLastError();
      return fmt::format("the graph node of {} does not give its arguments back",
                         kernel_name(kernel_stub));
    }
    if (std::string problem = check_argument_layout(launch.parameter); !problem.empty())
      return problem;
    rewritable_.push_back(kernel);
  }
  return {};
}

void StepGraph::set_argument(const KernelNode& node, const ops::StepParameter& parameter,
                             const void* value) {
  std::vector<void*> arguments(node.params.kernelParams,
                               node.params.kernelParams + parameter.count);
  arguments[static_cast<std::size_t>(parameter.index)] = const_cast<void*>(value);
  cudaKernelNodeParams params = node.params;
  params.kernelParams = arguments.data();
  cuda::check(cudaGraphExecKernelNodeSetParams(exec_, node.node, &params),
              "cudaGraphExecKernelNodeSetParams");
}

void StepGraph::set_arguments(const std::vector<ops::StepArgument>& arguments) {
  for (const ops::StepArgument& argument : arguments)
    for (const KernelNode& node : rewritable_)
      if (node.kernel == argument.parameter.kernel)
        set_argument(node, argument.parameter, argument.value.data());
}

void StepGraph::set_dropout_step(std::uint32_t step) {
  const ops::StepParameter dropout = ops::dropout_draw_parameter();
  for (const KernelNode& node : rewritable_) {
    if (node.kernel != dropout.kernel) continue;
    // The layer and seed as captured; only the step moves on.
    ops::DropoutDraw draw =
        *static_cast<const ops::DropoutDraw*>(node.params.kernelParams[dropout.index]);
    draw.step = step;
    set_argument(node, dropout, &draw);
  }
}

void StepGraph::replay() {
  if (exec_ == nullptr) throw InternalError("StepGraph::replay: nothing captured");
  cuda::check(cudaGraphLaunch(exec_, cuda::stream(device_)), "cudaGraphLaunch");
}

}  // namespace kiln::train
#endif  // KILN_HAVE_CUDA
