// IDX reader (data/idx.cpp), gzip-compressed input included: any input either
// reads or gives a DataError.
#include <kiln/data/idx.h>
#include <kiln/error.h>

#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = kiln::fuzz::write_input(data, size, "input-ubyte");
  try {
    const kiln::data::Array array = kiln::data::read_idx(file);
    if (static_cast<std::int64_t>(array.bytes.size()) !=
        array.elements() * static_cast<std::int64_t>(kiln::size_of(array.dtype)))
      __builtin_trap();  // the reader's promise: bytes match shape and dtype
  } catch (const kiln::DataError&) {
  }
  return 0;
}
