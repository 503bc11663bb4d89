// Device memory through the CUDA runtime. Copies and fills are ordered on the
// device's current stream (tensor/cuda_context.h), after the ops that produced the
// data; only a copy into host memory waits, because the host reads it next.
#ifdef KILN_HAVE_CUDA
#include "tensor/device_memory.h"

#include <kiln/error.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>

#include "tensor/cuda_context.h"

namespace kiln {
namespace {

cudaMemcpyKind copy_kind(Device destination, Device source) {
  if (destination.is_cpu()) return cudaMemcpyDeviceToHost;
  if (source.is_cpu()) return cudaMemcpyHostToDevice;
  return cudaMemcpyDeviceToDevice;
}

// An event for one cross-device copy; destroying it right after the waits that
// use it is allowed (CUDA releases it once the work it marks is done).
class CopyEvent {
 public:
  explicit CopyEvent(Device device) {
    cuda::context(device);  // an event belongs to the device current at its creation
    cuda::check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate");
  }
  ~CopyEvent() { cudaEventDestroy(event_); }
  CopyEvent(const CopyEvent&) = delete;
  CopyEvent& operator=(const CopyEvent&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

// Between two GPUs the copy runs on the destination's stream, while the source
// block belongs to the source device's caching allocator, which reuses a freed
// block for the next work on the source's stream without any event: that stream's
// order is all that protects a block. So the copy must start after the source
// stream's work that wrote the data, and the source stream must run nothing more
// until the copy has read it, or a block freed right after this call could be
// overwritten while the copy still reads it. One event each way orders both, and
// the host waits for neither (kiln keeps one model on one device, so this is rare,
// but a stalled host would cost a whole step where it happens).
void copy_between_devices(void* destination, Device destination_device, const void* source,
                          Device source_device, std::size_t bytes) {
  const cudaStream_t from = cuda::stream(source_device);
  const CopyEvent written(source_device);
  cuda::check(cudaEventRecord(written.get(), from), "cudaEventRecord (before a peer copy)");
  const cudaStream_t to = cuda::stream(destination_device);  // leaves the destination current
  const CopyEvent read(destination_device);
  cuda::check(cudaStreamWaitEvent(to, written.get(), 0), "cudaStreamWaitEvent (peer copy)");
  cuda::check(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToDevice, to),
              "cudaMemcpyAsync (peer copy)");
  cuda::check(cudaEventRecord(read.get(), to), "cudaEventRecord (after a peer copy)");
  cuda::check(cudaStreamWaitEvent(from, read.get(), 0), "cudaStreamWaitEvent (peer copy)");
}

}  // namespace

void copy_bytes(void* destination, Device destination_device, const void* source,
                Device source_device, std::size_t bytes) {
  // Host to host needs no driver: a machine without a GPU runs this build too.
  if (destination_device.is_cpu() && source_device.is_cpu()) {
    if (bytes != 0) std::memcpy(destination, source, bytes);
    return;
  }
  if (bytes == 0) return;
  if (destination_device.is_cuda() && source_device.is_cuda() &&
      destination_device != source_device) {
    copy_between_devices(destination, destination_device, source, source_device, bytes);
    return;
  }
  const Device device = destination_device.is_cuda() ? destination_device : source_device;
  const cudaStream_t stream = cuda::stream(device);
  // From pageable host memory, cudaMemcpyAsync returns once the source has been
  // staged, so the caller may reuse its buffer at once.
  cuda::check(cudaMemcpyAsync(destination, source, bytes,
                              copy_kind(destination_device, source_device), stream),
              "cudaMemcpyAsync");
  if (destination_device.is_cpu())
    cuda::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (device to host copy)");
}

void zero_bytes(void* destination, Device device, std::size_t bytes) {
  if (device.is_cpu()) {
    std::fill_n(static_cast<unsigned char*>(destination), bytes, 0);
    return;
  }
  if (bytes == 0) return;
  cuda::check(cudaMemsetAsync(destination, 0, bytes, cuda::stream(device)), "cudaMemsetAsync");
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
          cuda::context(Device::cuda(device_index));  // the device, with its stream
          // While a training step is captured as a CUDA graph (train/step_graph.h)
          // its new blocks are real allocations, made once and kept by the graph's
          // pool, not graph nodes. The capturing thread may only make them in
          // relaxed mode: cudaMalloc would otherwise invalidate the capture.
          cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
          cudaThreadExchangeStreamCaptureMode(&mode);
          const cudaError_t status = cudaMalloc(&block, size);
          cudaThreadExchangeStreamCaptureMode(&mode);
          if (status == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // clear the error; the allocator reports it with the size
            return nullptr;
          }
          cuda::check(status, "cudaMalloc");
          return block;
        },
        [device_index](void* block) {
          // cudaFree waits for the device, so no kernel still uses the block. It
          // fails only once the driver is shutting down, when nothing is left to do.
          if (cudaSetDevice(device_index) == cudaSuccess) cudaFree(block);
        },
        name});
  }
  return *allocator;
}

}  // namespace kiln
#endif
