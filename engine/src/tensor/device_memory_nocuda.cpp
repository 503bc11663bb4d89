// Host-only device memory: used when kiln is built without CUDA.
#ifndef KILN_HAVE_CUDA
#include "tensor/device_memory.h"

#include <kiln/error.h>

#include <cstring>

namespace kiln {

void copy_bytes(void* destination, Device destination_device, const void* source,
                Device source_device, std::size_t bytes) {
  if (!destination_device.is_cpu() || !source_device.is_cpu())
    throw ConfigError("this kiln was built without CUDA: no tensor can live on a CUDA device");
  std::memcpy(destination, source, bytes);
}

void zero_bytes(void* destination, Device device, std::size_t bytes) {
  if (!device.is_cpu())
    throw ConfigError("this kiln was built without CUDA: no tensor can live on a CUDA device");
  std::memset(destination, 0, bytes);
}

Allocator& cuda_allocator(int) {
  throw ConfigError("this kiln was built without CUDA: no tensor can live on a CUDA device");
}

}  // namespace kiln
#endif
