// safetensors reader (formats/safetensors.cpp): any input either reads, with every
// tensor's bytes matching its shape and dtype, or gives a DataError.
#include <kiln/error.h>
#include <kiln/safetensors.h>

#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = kiln::fuzz::write_input(data, size, "input.safetensors");
  try {
    const kiln::SafetensorsFile read = kiln::read_safetensors(file);
    std::size_t total = 0;
    for (const kiln::StoredTensor& tensor : read.tensors) {
      std::size_t elements = 1;
      for (const std::int64_t dim : tensor.shape) {
        if (dim < 0) __builtin_trap();
        elements *= static_cast<std::size_t>(dim);
      }
      if (tensor.bytes.size() != elements * kiln::size_of(tensor.dtype)) __builtin_trap();
      if (read.find(tensor.name) == nullptr) __builtin_trap();
      total += tensor.bytes.size();
    }
    if (total > size) __builtin_trap();  // no tensor bytes that the file did not hold
  } catch (const kiln::DataError&) {
  }
  return 0;
}
