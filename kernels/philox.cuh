// Philox-4x32-10 for host and device (Salmon et al., SC'11), written once as
// __host__ __device__ code: kiln::nn::philox4x32 (engine/include/kiln/nn/rng.h) is
// this function, and CUDA kernels call it directly, so CPU twins and kernels draw
// identical numbers. tests/nn/rng_test.cpp checks it against Random123's
// known answers through the engine's entry point.
//
// Addressing (the engine's): key = {seed lo, seed hi}, counter = {counter lo,
// counter hi, stream, 0}.
#pragma once

#include <cstdint>

#include "kernels/host_device.h"

namespace kiln::kernels {

struct Philox4 {
  std::uint32_t word[4];
};

KILN_HOST_DEVICE inline void philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                            std::uint32_t& lo) {
#if defined(__CUDA_ARCH__)
  hi = __umulhi(a, b);
  lo = a * b;
#else
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(product >> 32);
  lo = static_cast<std::uint32_t>(product);
#endif
}

KILN_HOST_DEVICE inline Philox4 philox4x32_10(Philox4 counter, std::uint32_t key0,
                                              std::uint32_t key1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += 0x9E3779B9u;  // Weyl constants: golden ratio, sqrt(3) - 1
      key1 += 0xBB67AE85u;
    }
    std::uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, counter.word[0], hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, counter.word[2], hi1, lo1);
    counter = {{hi1 ^ counter.word[1] ^ key0, lo1, hi0 ^ counter.word[3] ^ key1, lo0}};
  }
  return counter;
}

// The engine's philox4x32(seed, stream, counter).
KILN_HOST_DEVICE inline Philox4 philox(std::uint64_t seed, std::uint32_t stream,
                                       std::uint64_t counter) {
  const Philox4 input{
      {static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32), stream, 0u}};
  return philox4x32_10(input, static_cast<std::uint32_t>(seed),
                       static_cast<std::uint32_t>(seed >> 32));
}

// A uniform float in [0, 1) from one word: its top 24 bits times 2^-24. 24 bits fill a
// float mantissa, so every result is exact and 1.0f is unreachable (nn::uniform01 and
// dropout draw through this).
KILN_HOST_DEVICE inline float uniform01(std::uint32_t word) {
  return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

// Integer in [0, bound) by 32-bit multiply-high (bias below bound / 2^32).
KILN_HOST_DEVICE inline std::uint32_t uniform_below(std::uint32_t word, std::uint32_t bound) {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(word) * bound) >> 32);
}

}  // namespace kiln::kernels
