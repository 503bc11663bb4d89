#ifdef KILN_HAVE_CUDA
#include "tensor/cuda_context.h"

#include <kiln/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::cuda {
namespace {

constexpr int kMaxDevices = 64;

struct Workspace {
  void* data = nullptr;
  std::size_t bytes = 0;
};

struct Slot {
  std::once_flag created;
  DeviceContext context;
  std::mutex cudnn_mutex;
  std::atomic<cudnnHandle_t> cudnn{nullptr};
  std::mutex workspace_mutex;
  Workspace workspace;
  int pins = 0;                // live CUDA graphs that address the workspace
  std::vector<void*> retired;  // blocks replaced while pinned, freed when unpinned
};

// Never destroyed: handles and streams die with the process, and tensors held by
// static objects may still free device memory after main() returns.
std::array<Slot, kMaxDevices>& slots() {
  static auto* all = new std::array<Slot, kMaxDevices>();
  return *all;
}

void create(DeviceContext& context, int index) {
  context.index = index;
  check(cudaSetDevice(index), "cudaSetDevice");
  check(cudaDeviceGetAttribute(&context.multiprocessors, cudaDevAttrMultiProcessorCount, index),
        "cudaDeviceGetAttribute");
  // A blocking stream (not cudaStreamNonBlocking): work on the legacy default
  // stream, such as a plain cudaMemcpy in a test, stays ordered with kiln's.
  check(cudaStreamCreate(&context.stream), "cudaStreamCreate");
  check(cublasLtCreate(&context.cublas_lt), "cublasLtCreate");
}

Slot& slot_of(Device device) {
  if (!device.is_cuda() || device.index < 0 || device.index >= kMaxDevices)
    throw InternalError("CUDA context asked for device " + device.str());
  return slots()[static_cast<std::size_t>(device.index)];
}

}  // namespace

void check(cudaError_t status, const char* what, std::source_location where) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so that later calls are not blamed
  throw StageError(std::string(what) + " failed: " + cudaGetErrorString(status), where);
}

void check(cublasStatus_t status, const char* what, std::source_location where) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw StageError(
      std::string(what) + " failed: cuBLAS status " + std::to_string(static_cast<int>(status)),
      where);
}

void check(cudnnStatus_t status, const char* what, std::source_location where) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  throw StageError(std::string(what) + " failed: " + cudnnGetErrorString(status), where);
}

void check_launch(const char* kernel, std::source_location where) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw StageError(std::string("CUDA kernel ") + kernel +
                         " could not be launched: " + cudaGetErrorString(status),
                     where);
}

DeviceContext& context(Device device) {
  Slot& slot = slot_of(device);
  std::call_once(slot.created, create, slot.context, device.index);
  check(cudaSetDevice(device.index), "cudaSetDevice");
  return slot.context;
}

cudnnHandle_t cudnn(Device device) {
  const DeviceContext& owner = context(device);
  Slot& slot = slot_of(device);
  if (cudnnHandle_t handle = slot.cudnn.load(std::memory_order_acquire)) return handle;
  std::lock_guard lock(slot.cudnn_mutex);
  if (cudnnHandle_t handle = slot.cudnn.load(std::memory_order_relaxed)) return handle;
  cudnnHandle_t handle = nullptr;
  const cudnnStatus_t status = cudnnCreate(&handle);
  if (status != CUDNN_STATUS_SUCCESS)
    throw StageError(fmt::format(
        "cuDNN {} could not be set up on {}, and convolutions need it: cudnnCreate failed: {} "
        "(check that cuDNN 9's libraries, libcudnn_engines_*.so among them, are installed for "
        "this GPU)",
        cudnnGetVersion(), device.str(), cudnnGetErrorString(status)));
  if (const cudnnStatus_t bound = cudnnSetStream(handle, owner.stream);
      bound != CUDNN_STATUS_SUCCESS) {
    cudnnDestroy(handle);
    check(bound, "cudnnSetStream");
  }
  slot.cudnn.store(handle, std::memory_order_release);
  return handle;
}

bool cudnn_created(Device device) {
  return slot_of(device).cudnn.load(std::memory_order_acquire) != nullptr;
}

void pin_workspace(Device device) {
  Slot& slot = slots()[static_cast<std::size_t>(device.index)];
  std::lock_guard lock(slot.workspace_mutex);
  ++slot.pins;
}

void unpin_workspace(Device device) {
  DeviceContext& owner = context(device);
  Slot& slot = slots()[static_cast<std::size_t>(device.index)];
  std::lock_guard lock(slot.workspace_mutex);
  if (--slot.pins > 0 || slot.retired.empty()) return;
  // Called from destructors: no throwing; a failure here means the driver is
  // shutting down and the blocks go with it.
  cudaStreamSynchronize(owner.stream);
  for (void* block : slot.retired) cudaFree(block);
  slot.retired.clear();
}

void* workspace(Device device, std::size_t bytes) {
  DeviceContext& owner = context(device);
  Slot& slot = slots()[static_cast<std::size_t>(device.index)];
  std::lock_guard lock(slot.workspace_mutex);
  Workspace& w = slot.workspace;
  if (w.bytes >= bytes && w.data != nullptr) return w.data;
  // Growing happens in the first steps only (plans are cached): wait for the
  // work that may still use the old block, then replace it.
  if (w.data != nullptr) {
    if (slot.pins > 0) {
      slot.retired.push_back(w.data);  // a captured graph still uses it
    } else {
      check(cudaStreamSynchronize(owner.stream), "cudaStreamSynchronize");
      check(cudaFree(w.data), "cudaFree");
    }
    w = {};
  }
  const std::size_t size = std::max(bytes, kGemmWorkspaceBytes);
  const cudaError_t status = cudaMalloc(&w.data, size);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw StageError("out of " + device.str() + " memory: the cuBLASLt/cuDNN workspace of " +
                     std::to_string(size) + " bytes does not fit");
  }
  check(status, "cudaMalloc (workspace)");
  w.bytes = size;
  return w.data;
}

unsigned grid_for(Device device, std::int64_t n, int threads) {
  if (n <= 0) return 1;
  const std::int64_t needed = (n + threads - 1) / threads;
  // An SM holds 2048 threads (sm_90): two waves of full SMs keep a streaming
  // kernel's loads in flight; more blocks only add scheduling work.
  const std::int64_t enough = std::int64_t{context(device).multiprocessors} * 2 * (2048 / threads);
  return static_cast<unsigned>(std::max<std::int64_t>(1, std::min(needed, enough)));
}

}  // namespace kiln::cuda
#endif  // KILN_HAVE_CUDA
