#ifdef KILN_HAVE_CUDA
#include "train/device_upload.h"

#include <cstring>

#include "tensor/cuda_context.h"

namespace kiln::train {

DeviceUpload::DeviceUpload(Device device)
    : device_(device),
      ring_(kSlots, {[this](std::size_t slot) {
                       cuda::check(cudaEventRecord(slots_[slot].done, cuda::stream(device_)),
                                   "cudaEventRecord (upload)");
                     },
                     [this](std::size_t slot) {
                       cuda::check(cudaEventSynchronize(slots_[slot].done),
                                   "cudaEventSynchronize (upload)");
                     }}) {
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

void DeviceUpload::begin_batch() { slots_[ring_.begin_batch()].used = 0; }

Tensor DeviceUpload::upload(const void* bytes, const Shape& shape, DType dtype) {
  Tensor out = Tensor::empty(shape, dtype, device_);
  const std::size_t size = out.nbytes();
  if (size == 0) return out;
  Slot& slot = slots_[ring_.current()];
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
  ring_.copy_issued();
  cuda::check(
      cudaMemcpyAsync(out.raw(), buffer.data, size, cudaMemcpyHostToDevice, cuda::stream(device_)),
      "cudaMemcpyAsync (batch upload)");
  return out;
}

void DeviceUpload::end_batch() { ring_.end_batch(); }

}  // namespace kiln::train
#endif  // KILN_HAVE_CUDA
