#include <kiln/checked_size.h>
#include <kiln/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>

namespace kiln {

std::int64_t checked_bytes(std::span<const std::int64_t> shape, std::int64_t element_size,
                           std::string_view what) {
  const auto refuse = [&](std::string_view why) {
    const std::string elements =
        element_size == 1 ? "" : fmt::format(" of {}-byte elements", element_size);
    throw DataError(
        fmt::format("{}: shape [{}]{} {}", what, fmt::join(shape, ", "), elements, why));
  };
  if (element_size <= 0) refuse("has no valid element size");
  // The product of the non-zero extents: a zero extent must not hide the others.
  std::int64_t nonzero = element_size;
  bool empty = false;
  for (const std::int64_t extent : shape) {
    if (extent < 0) refuse("has a negative extent");
    if (extent == 0) {
      empty = true;
      continue;
    }
    if (__builtin_mul_overflow(nonzero, extent, &nonzero) || nonzero > kMaxDeclaredBytes)
      refuse("is impossibly large (more than 2^48 bytes)");
  }
  return empty ? 0 : nonzero;
}

std::int64_t checked_product(std::span<const std::int64_t> shape, std::string_view what) {
  return checked_bytes(shape, 1, what);
}

}  // namespace kiln
