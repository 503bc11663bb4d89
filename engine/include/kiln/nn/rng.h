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

// The four 32-bit outputs of Philox-4x32-10 for key `seed` and the 128-bit counter
// (stream, counter_hi = high word of index, counter).
std::array<std::uint32_t, 4> philox4x32(std::uint64_t seed, std::uint32_t stream,
                                        std::uint64_t counter) noexcept;

// Uniform float in [0, 1) from the `index`-th 32-bit draw of a stream.
float uniform01(std::uint64_t seed, RngStream stream, std::uint64_t index) noexcept;
// Uniform integer in [0, bound) (bound > 0) from the `index`-th 64-bit draw, by
// multiply-high (Lemire); the bias is below bound / 2^64.
std::uint64_t uniform_below(std::uint64_t seed, RngStream stream, std::uint64_t index,
                            std::uint64_t bound) noexcept;

// A permutation of [0, n) for `epoch`: Fisher-Yates driven by the Shuffle stream,
// draws addressed by (epoch, position) so that any epoch can be recomputed alone.
std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed, std::uint64_t epoch);

}  // namespace kiln::nn
