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

bool StepKernelLog::defer(const StepParameter& parameter, const void* value) {
  if (active_log == nullptr || active_log->mode_ != Mode::Defer) return false;
  StepArgument argument{parameter, std::vector<std::byte>(parameter.size)};
  std::memcpy(argument.value.data(), value, parameter.size);
  active_log->deferred_.push_back(std::move(argument));
  return true;
}

void StepKernelLog::launched(const StepParameter& parameter, cudaStream_t stream) {
  if (active_log == nullptr || active_log->mode_ != Mode::Observe) return;
  StepLaunch launch{parameter, nullptr, {}};
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
