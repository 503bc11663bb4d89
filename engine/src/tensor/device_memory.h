// Private: copies and fills between devices. The CPU build implements host
// memory only; the CUDA backend supplies the device variants in its own file.
#pragma once

#include "tensor/caching_allocator.h"

#include <cstddef>

namespace kiln {

void copy_bytes(void* destination, Device destination_device, const void* source,
                Device source_device, std::size_t bytes);
void zero_bytes(void* destination, Device device, std::size_t bytes);
Allocator& cuda_allocator(int device_index);

}  // namespace kiln
