// Private to the engine, CUDA builds only: what every CUDA op needs besides its
// tensors. Each device has one current stream (all of kiln's work on a device is
// ordered on it, which is what makes the caching allocator's reuse of freed blocks
// safe without events), one cuBLASLt handle, one cuDNN handle bound to that stream,
// and one growable workspace for both libraries. Everything is created on first
// use, so a process that never touches a GPU never calls into CUDA, and the cuDNN
// handle only when a convolution first asks for it: cuDNN 9 loads its engine
// libraries at cudnnCreate, and a machine where that fails can still run GEMMs.
#pragma once

#ifdef KILN_HAVE_CUDA

#include <kiln/tensor/device.h>

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <source_location>

namespace kiln::cuda {

// StageError "<what>: <CUDA's message>" unless `status` is success. `where` is the
// caller's check, kept as the error's origin.
void check(cudaError_t status, const char* what,
           std::source_location where = std::source_location::current());
void check(cublasStatus_t status, const char* what,
           std::source_location where = std::source_location::current());
void check(cudnnStatus_t status, const char* what,
           std::source_location where = std::source_location::current());
// After a kernel launch: StageError naming the kernel if the launch failed (bad
// configuration, no device, a sticky error from an earlier kernel).
void check_launch(const char* kernel, std::source_location where = std::source_location::current());

// Makes `device` current on the calling thread and returns its stream, handles and
// workspace.
struct DeviceContext {
  int index = 0;
  cudaStream_t stream = nullptr;
  cublasLtHandle_t cublas_lt = nullptr;
  int multiprocessors = 0;
};
DeviceContext& context(Device device);
inline cudaStream_t stream(Device device) { return context(device).stream; }

// The device's cuDNN handle, bound to its stream; created on the first call
// (StageError naming cuDNN if it cannot be, retried on the next call).
cudnnHandle_t cudnn(Device device);
// Whether cudnn(device) has created the handle yet.
bool cudnn_created(Device device);

// Scratch memory for cuBLASLt and cuDNN on `device`, at least `bytes` long, valid
// until the next call for the same device (work on the device's stream is ordered,
// so the previous user is done with it when the next one's kernels run).
void* workspace(Device device, std::size_t bytes);
// A captured CUDA graph keeps the workspace's address: while pinned (once per
// live graph), a growing workspace leaves its old block alone until the last unpin.
void pin_workspace(Device device);
void unpin_workspace(Device device);
// The workspace cuBLASLt may use for every GEMM (set once: a GEMM's plan is chosen
// for it and cached).
inline constexpr std::size_t kGemmWorkspaceBytes = std::size_t{32} << 20;

// Blocks for a grid-stride loop over `n` elements with `threads` per block: enough
// to fill the device, no more than the work needs.
unsigned grid_for(Device device, std::int64_t n, int threads);

}  // namespace kiln::cuda

#endif  // KILN_HAVE_CUDA
