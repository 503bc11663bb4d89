// NPY reader (data/npy.cpp): any input either reads or gives a DataError.
#include <kiln/data/npy.h>
#include <kiln/error.h>

#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = kiln::fuzz::write_input(data, size, "input.npy");
  try {
    const kiln::data::Array array = kiln::data::read_npy(file);
    if (array.shape.empty() ||
        static_cast<std::int64_t>(array.bytes.size()) !=
            array.elements() * static_cast<std::int64_t>(kiln::size_of(array.dtype)))
      __builtin_trap();  // the reader's promise: at least one axis, bytes match the shape
  } catch (const kiln::DataError&) {
  }
  return 0;
}
