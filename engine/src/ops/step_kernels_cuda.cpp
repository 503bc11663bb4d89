#ifdef KILN_HAVE_CUDA
#include "ops/step_kernels.h"

#include <fmt/format.h>

#include <cstring>

namespace kiln::ops {
namespace {

thread_local StepKernelLog* active_log = nullptr;

}  // namespace

StepKernelLog::StepKernelLog(Mode mode) : mode_(mode), previous_(active_log) { active_log = this; }

StepKernelLog::~StepKernelLog() { active_log = previous_; }

bool StepKernelLog::defer(const void* kernel, int index, int count, const void* value,
                          std::size_t size) {
  if (active_log == nullptr || active_log->mode_ != Mode::Defer) return false;
  StepArgument argument{kernel, index, count, std::vector<std::byte>(size)};
  std::memcpy(argument.value.data(), value, size);
  active_log->deferred_.push_back(std::move(argument));
  return true;
}

void StepKernelLog::launched(const void* kernel, cudaStream_t stream, int index, int count,
                             std::size_t size) {
  if (active_log == nullptr || active_log->mode_ != Mode::Observe) return;
  StepLaunch launch{kernel, nullptr, index, count, size, {}};
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaGraphNode_t* dependencies = nullptr;
  std::size_t dependency_count = 0;
  const cudaError_t error = cudaStreamGetCaptureInfo(stream, &status, nullptr, nullptr,
                                                     &dependencies, nullptr, &dependency_count);
  if (error != cudaSuccess) {
    cudaGetLastError();  // not the next launch's fault
    launch.problem = fmt::format("cudaStreamGetCaptureInfo: {}", cudaGetErrorString(error));
  } else if (status != cudaStreamCaptureStatusActive) {
    launch.problem = "its stream was not capturing";
  } else if (dependency_count != 1) {
    launch.problem =
        fmt::format("after it the capturing stream depends on {} nodes, not on the launch's one",
                    dependency_count);
  } else {
    launch.node = dependencies[0];
  }
  active_log->launches_.push_back(std::move(launch));
}

}  // namespace kiln::ops
#endif  // KILN_HAVE_CUDA
