#include <kiln/error.h>
#include <kiln/nn/rng.h>

#include <numeric>
#include <string>
#include <utility>

namespace kiln::nn {
namespace {

constexpr std::uint32_t kMultiplier0 = 0xD2511F53u;
constexpr std::uint32_t kMultiplier1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr int kRounds = 10;

struct HiLo {
  std::uint32_t hi;
  std::uint32_t lo;
};

inline HiLo multiply_hilo(std::uint32_t a, std::uint32_t b) noexcept {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  return {static_cast<std::uint32_t>(product >> 32), static_cast<std::uint32_t>(product)};
}

inline std::array<std::uint32_t, 4> philox_round(const std::array<std::uint32_t, 4>& c,
                                                 const std::array<std::uint32_t, 2>& k) noexcept {
  const HiLo p0 = multiply_hilo(kMultiplier0, c[0]);
  const HiLo p1 = multiply_hilo(kMultiplier1, c[2]);
  return {p1.hi ^ c[1] ^ k[0], p1.lo, p0.hi ^ c[3] ^ k[1], p0.lo};
}

}  // namespace

std::array<std::uint32_t, 4> philox4x32_raw(std::array<std::uint32_t, 4> counter,
                                            std::array<std::uint32_t, 2> key) noexcept {
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) {
      key[0] += kWeyl0;
      key[1] += kWeyl1;
    }
    counter = philox_round(counter, key);
  }
  return counter;
}

std::array<std::uint32_t, 4> philox4x32(std::uint64_t seed, std::uint32_t stream,
                                        std::uint64_t counter) noexcept {
  return philox4x32_raw(
      {static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32), stream, 0u},
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
}

float uniform01(std::uint64_t seed, RngStream stream, std::uint64_t index) noexcept {
  const auto block = philox4x32(seed, static_cast<std::uint32_t>(stream), index / 4);
  // 24 bits fill a float mantissa, so every result is exact and 1.0f is unreachable.
  return static_cast<float>(block[index % 4] >> 8) * 0x1.0p-24f;
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
