// Device memory through the CUDA runtime. Copies here are synchronous; the
// training path's asynchronous copies go through streams in the CUDA backend.
#ifdef KILN_HAVE_CUDA
#include "tensor/device_memory.h"

#include <kiln/error.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>

namespace kiln {
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw StageError(std::string(what) + " failed: " + cudaGetErrorString(status));
}

cudaMemcpyKind copy_kind(Device destination, Device source) {
  if (destination.is_cpu() && source.is_cpu()) return cudaMemcpyHostToHost;
  if (destination.is_cpu()) return cudaMemcpyDeviceToHost;
  if (source.is_cpu()) return cudaMemcpyHostToDevice;
  return cudaMemcpyDeviceToDevice;
}

}  // namespace

void copy_bytes(void* destination, Device destination_device, const void* source,
                Device source_device, std::size_t bytes) {
  // Host to host needs no driver: a machine without a GPU runs this build too.
  if (destination_device.is_cpu() && source_device.is_cpu()) {
    if (bytes != 0) std::memcpy(destination, source, bytes);
    return;
  }
  check(cudaMemcpy(destination, source, bytes, copy_kind(destination_device, source_device)),
        "cudaMemcpy");
}

void zero_bytes(void* destination, Device device, std::size_t bytes) {
  if (device.is_cpu()) {
    std::fill_n(static_cast<unsigned char*>(destination), bytes, 0);
    return;
  }
  check(cudaMemset(destination, 0, bytes), "cudaMemset");
}

Allocator& cuda_allocator(int device_index) {
  constexpr int kMaxDevices = 64;
  static std::array<std::unique_ptr<CachingAllocator>, kMaxDevices>* allocators =
      new std::array<std::unique_ptr<CachingAllocator>, kMaxDevices>();
  static std::mutex mutex;
  if (device_index < 0 || device_index >= kMaxDevices)
    throw ConfigError("cuda:" + std::to_string(device_index) + ": no such device");
  std::lock_guard lock(mutex);
  auto& allocator = (*allocators)[static_cast<std::size_t>(device_index)];
  if (!allocator) {
    const std::string name = "cuda:" + std::to_string(device_index);
    allocator = std::make_unique<CachingAllocator>(CachingAllocator::System{
        [device_index](std::size_t size) -> void* {
          void* block = nullptr;
          cudaSetDevice(device_index);
          if (cudaMalloc(&block, size) != cudaSuccess) {
            cudaGetLastError();  // clear the error; the caller reports it
            return nullptr;
          }
          return block;
        },
        [device_index](void* block) {
          cudaSetDevice(device_index);
          cudaFree(block);
        },
        name});
  }
  return *allocator;
}

}  // namespace kiln
#endif
