// Private to train, CUDA builds only: moves a batch's host arrays to a GPU without
// waiting for the device. Each array is copied into pinned (page-locked) host
// memory, from which cudaMemcpyAsync is a true DMA on the device's stream, so the
// host returns at once and the copy overlaps the previous step's kernels. Pinned
// memory comes in a ring of kSlots slots, one per batch: before a slot is refilled
// the host waits for the event recorded after its copies, which were issued
// kSlots batches ago and are normally long done. The ring's bookkeeping
// (train/upload_slot_ring.h) records that event even for a batch an exception
// cut short.
#pragma once

#ifdef KILN_HAVE_CUDA

#include <kiln/tensor/tensor.h>

#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <vector>

#include "train/upload_slot_ring.h"

namespace kiln::train {

class DeviceUpload {
 public:
  explicit DeviceUpload(Device device);
  ~DeviceUpload();
  DeviceUpload(const DeviceUpload&) = delete;
  DeviceUpload& operator=(const DeviceUpload&) = delete;

  // Starts a batch in the next slot (waiting, if need be, for its last copies).
  // Call it for every batch, also after one whose uploads threw.
  void begin_batch();
  // A new tensor on the device holding `bytes` (shape's element count of dtype).
  Tensor upload(const void* bytes, const Shape& shape, DType dtype);
  // Marks the end of the batch's copies.
  void end_batch();

 private:
  static constexpr std::size_t kSlots = 4;
  struct Buffer {
    void* data = nullptr;
    std::size_t capacity = 0;
  };
  struct Slot {
    std::vector<Buffer> buffers;  // one per upload of a batch, reused batch to batch
    std::size_t used = 0;         // uploads in the current batch
    cudaEvent_t done = nullptr;   // recorded after the slot's copies
  };

  Device device_;
  std::array<Slot, kSlots> slots_;
  UploadSlotRing ring_;
};

}  // namespace kiln::train

#endif  // KILN_HAVE_CUDA
