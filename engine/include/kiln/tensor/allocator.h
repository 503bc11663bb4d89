// Memory for tensors. Each device has one caching allocator: freed blocks go back
// to a per-size free list and are reused, so a training step allocates nothing
// from the system once the first step has run (no malloc/cudaMalloc per
// step).
#pragma once

#include <kiln/tensor/device.h>

#include <cstddef>

namespace kiln {

struct AllocatorStats {
  std::size_t bytes_in_use = 0;        // handed out and not yet returned
  std::size_t bytes_cached = 0;        // returned, kept for reuse
  std::size_t system_allocations = 0;  // blocks obtained from the system so far
};

class Allocator {
 public:
  virtual ~Allocator();
  // At least `bytes` bytes, aligned to 64 bytes (a cache line, and AVX-512's width).
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* pointer, std::size_t bytes) = 0;
  virtual AllocatorStats stats() const = 0;
  // Returns cached blocks to the system.
  virtual void release_cached() = 0;
};

// The process-wide caching allocator of a device. CUDA devices are available once
// the CUDA backend is built in; asking for one without it is a ConfigError.
Allocator& allocator_for(Device device);

}  // namespace kiln
