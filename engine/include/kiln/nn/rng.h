// Counter-based random numbers: Philox-4x32-10 (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC'11). A draw is a pure function of (seed,
// stream, counter), so any element of any stream can be computed independently,
// on the CPU or by a CUDA thread, and gives the same number on both.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace kiln::nn {

// Streams used by the engine; distinct streams never share numbers for one seed.
enum class RngStream : std::uint32_t { Init = 1, Shuffle = 2, Dropout = 3, Augment = 4 };

// Philox-4x32-10 itself, words as in Random123 (philox4x32_R(10, ...)): rounds use
// the multipliers 0xD2511F53 and 0xCD9E8D57 and the key is bumped by the Weyl
// constants 0x9E3779B9, 0xBB67AE85 between rounds. Checked against the Random123
// known-answer vectors (tests/kat_vectors of DEShawResearch/random123).
std::array<std::uint32_t, 4> philox4x32_raw(std::array<std::uint32_t, 4> counter,
                                            std::array<std::uint32_t, 2> key) noexcept;

// The engine's addressing, which a CUDA twin must reproduce word for word:
//   key     = { seed & 0xffffffff, seed >> 32 }
//   counter = { counter & 0xffffffff, counter >> 32, stream, 0 }
// so one (seed, stream) owns 2^64 blocks of four 32-bit words.
std::array<std::uint32_t, 4> philox4x32(std::uint64_t seed, std::uint32_t stream,
                                        std::uint64_t counter) noexcept;

// Uniform float in [0, 1) from the `index`-th 32-bit draw of a stream: word
// index % 4 of block index / 4, top 24 bits times 2^-24 (every value exact in float).
float uniform01(std::uint64_t seed, RngStream stream, std::uint64_t index) noexcept;
// Uniform integer in [0, bound) (bound > 0) from the `index`-th 64-bit draw, by
// multiply-high (Lemire); the bias is below bound / 2^64. The 64-bit draw k is
// words 2(k % 2) (low half) and 2(k % 2) + 1 (high half) of block k / 2.
std::uint64_t uniform_below(std::uint64_t seed, RngStream stream, std::uint64_t index,
                            std::uint64_t bound) noexcept;

// A permutation of [0, n) for `epoch`: Fisher-Yates driven by the Shuffle stream,
// draws addressed by (epoch, position) so that any epoch can be recomputed alone:
// for i = n-1 .. 1, swap slot i with slot uniform_below(seed, Shuffle,
// (epoch << 32) | i, i + 1). Only the low 32 bits of epoch count; n above 2^32 is
// an InternalError.
std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed, std::uint64_t epoch);

}  // namespace kiln::nn
