// NPZ reader (data/npz.cpp: libzip, then the NPY reader on each member): any input
// either reads or gives a DataError.
#include <kiln/data/npz.h>
#include <kiln/error.h>

#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = kiln::fuzz::write_input(data, size, "input.npz");
  try {
    const auto arrays = kiln::data::read_npz(file, {{"x", "x"}, {"y", "y"}});
    for (const auto& read : arrays)
      if (read.array.shape.empty() || read.array.rows() != arrays.front().array.rows() ||
          static_cast<std::int64_t>(read.array.bytes.size()) !=
              read.array.elements() * static_cast<std::int64_t>(kiln::size_of(read.array.dtype)))
        __builtin_trap();  // at least one axis, bytes match the shape, rows agree
  } catch (const kiln::DataError&) {
  }
  return 0;
}
