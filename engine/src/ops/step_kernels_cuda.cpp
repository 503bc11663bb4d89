#ifdef KILN_HAVE_CUDA
#include "ops/step_kernels.h"

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

void StepKernelLog::launched(const void* kernel) {
  if (active_log != nullptr && active_log->mode_ == Mode::Observe) ++active_log->launches_[kernel];
}

}  // namespace kiln::ops
#endif  // KILN_HAVE_CUDA
