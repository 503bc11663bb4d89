#ifdef KILN_HAVE_CUDA
#include "train/device_upload.h"

#include <cstring>

#include "tensor/cuda_context.h"

namespace kiln::train {

DeviceUpload::DeviceUpload(Device device) : device_(device) {
  cuda::context(device_);  // makes the device current
  for (Slot& slot : slots_)
    cuda::check(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming), "cudaEventCreate");
}

DeviceUpload::~DeviceUpload() {
  // Copies may still read the pinned buffers (an error may have cut a batch short).
  cudaStreamSynchronize(cuda::stream(device_));
  for (Slot& slot : slots_) {
    for (Buffer& buffer : slot.buffers) cudaFreeHost(buffer.data);
    if (slot.done != nullptr) cudaEventDestroy(slot.done);
  }
}

void DeviceUpload::begin_batch() {
  current_ = (current_ + 1) % kSlots;
  Slot& slot = slots_[current_];
  if (slot.pending) cuda::check(cudaEventSynchronize(slot.done), "cudaEventSynchronize (upload)");
  slot.pending = false;
  slot.used = 0;
}

Tensor DeviceUpload::upload(const void* bytes, const Shape& shape, DType dtype) {
  Tensor out = Tensor::empty(shape, dtype, device_);
  const std::size_t size = out.nbytes();
  if (size == 0) return out;
  Slot& slot = slots_[current_];
  if (slot.used == slot.buffers.size()) slot.buffers.emplace_back();
  Buffer& buffer = slot.buffers[slot.used++];
  if (buffer.capacity < size) {
    cuda::check(cudaFreeHost(buffer.data), "cudaFreeHost");
    buffer = {};
    // Some headroom, so that a slightly larger batch does not reallocate.
    const std::size_t capacity = size + size / 4;
    cuda::check(cudaHostAlloc(&buffer.data, capacity, cudaHostAllocDefault),
                "cudaHostAlloc (pinned batch buffer)");
    buffer.capacity = capacity;
  }
  std::memcpy(buffer.data, bytes, size);
  cuda::check(
      cudaMemcpyAsync(out.raw(), buffer.data, size, cudaMemcpyHostToDevice, cuda::stream(device_)),
      "cudaMemcpyAsync (batch upload)");
  return out;
}

void DeviceUpload::end_batch() {
  Slot& slot = slots_[current_];
  cuda::check(cudaEventRecord(slot.done, cuda::stream(device_)), "cudaEventRecord");
  slot.pending = true;
}

}  // namespace kiln::train
#endif  // KILN_HAVE_CUDA
