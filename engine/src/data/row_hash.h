// 128-bit hashes of rows, for finding duplicate rows and rows shared by two
// versions without holding the rows: two independent 64-bit hashes (libstdc++'s
// std::hash, Murmur-based, and FNV-1a). A false match among 10^9 distinct rows has
// a probability near 10^18 / 2^128, about 3e-21. Internal to engine/src/data.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace kiln::data::detail {

struct RowHash {
  std::uint64_t a = 0, b = 0;
  bool operator==(const RowHash&) const = default;
};

inline RowHash hash_row(const std::uint8_t* bytes, std::size_t size) {
  std::uint64_t fnv = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < size; ++i) fnv = (fnv ^ bytes[i]) * 0x100000001b3ull;
  const std::string_view view(reinterpret_cast<const char*>(bytes), size);
  return {std::hash<std::string_view>{}(view), fnv};
}

struct RowHashHasher {
  std::size_t operator()(const RowHash& hash) const noexcept { return hash.a; }
};

}  // namespace kiln::data::detail
