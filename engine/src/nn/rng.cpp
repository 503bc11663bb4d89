#include <kiln/error.h>
#include <kiln/nn/rng.h>

#include "kernels/philox.cuh"

#include <numeric>
#include <string>
#include <utility>

namespace kiln::nn {

// The one Philox and uniform draw of kiln: kernels/philox.cuh, which CUDA kernels
// call too.
std::array<std::uint32_t, 4> philox4x32_raw(std::array<std::uint32_t, 4> counter,
                                            std::array<std::uint32_t, 2> key) noexcept {
  const kernels::Philox4 words =
      kernels::philox4x32_10({{counter[0], counter[1], counter[2], counter[3]}}, key[0], key[1]);
  return {words.word[0], words.word[1], words.word[2], words.word[3]};
}

std::array<std::uint32_t, 4> philox4x32(std::uint64_t seed, std::uint32_t stream,
                                        std::uint64_t counter) noexcept {
  return philox4x32_raw(
      {static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32), stream, 0u},
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
}

float uniform01(std::uint64_t seed, RngStream stream, std::uint64_t index) noexcept {
  const auto block = philox4x32(seed, static_cast<std::uint32_t>(stream), index / 4);
  return kernels::uniform01(block[index % 4]);
}

std::uint64_t uniform_below(std::uint64_t seed, RngStream stream, std::uint64_t index,
                            std::uint64_t bound) noexcept {
  const auto block = philox4x32(seed, static_cast<std::uint32_t>(stream), index / 2);
  const std::size_t lane = 2 * (index % 2);
  const std::uint64_t draw = block[lane] | (static_cast<std::uint64_t>(block[lane + 1]) << 32);
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(draw) * bound) >> 64);
}

std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed, std::uint64_t epoch) {
  constexpr std::int64_t kMaxSize = std::int64_t{1} << 32;
  if (n < 0 || n > kMaxSize)
    throw InternalError("permutation of " + std::to_string(n) +
                        " elements: size must lie in [0, 2^32]");
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  const std::uint64_t epoch_base = epoch << 32;
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto position = static_cast<std::uint64_t>(i);
    const std::uint64_t j =
        uniform_below(seed, RngStream::Shuffle, epoch_base | position, position + 1);
    std::swap(order[position], order[j]);
  }
  return order;
}

}  // namespace kiln::nn
