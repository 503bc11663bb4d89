// 128-bit digests of rows, for finding duplicate rows and rows shared by two
// versions without holding the rows: XXH3-128 (libxxhash). A false match among
// 10^9 distinct rows has a probability near 10^18 / 2^128, about 3e-21.
// Internal to engine/src/data.
#pragma once

#include <xxhash.h>

#include <cstdint>

namespace kiln::data::detail {

struct RowHash {
  std::uint64_t a = 0, b = 0;
  bool operator==(const RowHash&) const = default;
};

inline RowHash hash_row(const std::uint8_t* bytes, std::size_t size) {
  const XXH128_hash_t digest = XXH3_128bits(bytes, size);
  return {digest.low64, digest.high64};
}

struct RowHashHasher {
  std::size_t operator()(const RowHash& hash) const noexcept { return hash.a; }
};

}  // namespace kiln::data::detail
