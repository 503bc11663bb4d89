// Checked arithmetic for sizes read from files. Every reader that sizes a buffer
// from a header (IDX, NPY, HDF5, safetensors, checkpoints) computes its products
// here, so a hostile header cannot wrap an int64 or dodge the check with one zero
// extent.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace kiln {

// No array kiln reads may declare more than 2^48 bytes (256 TiB): far above any
// node's memory, and low enough that offsets and block arithmetic on a checked
// size cannot overflow.
inline constexpr std::int64_t kMaxDeclaredBytes = std::int64_t{1} << 48;

// Bytes of an array of `shape` whose elements take `element_size` bytes. Throws
// DataError "<what>: shape [..] of <n>-byte elements ..." when an extent is
// negative or when the product overflows or exceeds kMaxDeclaredBytes. A zero
// extent makes the result 0, but the other extents must still multiply to a size
// within the bound: sub-products (a row's elements, say) are computed elsewhere.
// `what` names the file and the thing, e.g. "data.npy: NPY header".
std::int64_t checked_bytes(std::span<const std::int64_t> shape, std::int64_t element_size,
                           std::string_view what);

// The number of elements of `shape`, with the same checks (element size 1).
std::int64_t checked_product(std::span<const std::int64_t> shape, std::string_view what);

}  // namespace kiln
