// kernels/philox.cuh, the host/device Philox, is the engine's kiln::nn RNG.
#include <kiln/nn/rng.h>

#include "kernels/philox.cuh"

#include <gtest/gtest.h>

namespace kiln::kernels {
namespace {

TEST(Philox, MatchesTheEngineWordForWord) {
  for (std::uint64_t seed : {0ull, 1ull, 0xdeadbeefcafef00dull})
    for (std::uint32_t stream : {1u, 4u})
      for (std::uint64_t counter : {0ull, 1ull, 12345ull, (7ull << 40) | (99ull << 2) | 1ull}) {
        const Philox4 mine = philox(seed, stream, counter);
        const auto engine = nn::philox4x32(seed, stream, counter);
        for (int w = 0; w < 4; ++w) EXPECT_EQ(mine.word[w], engine[w]) << seed << " " << counter;
      }
}

TEST(Philox, Uniform01IsTheEnginesUniform01) {
  for (std::uint64_t index = 0; index < 64; ++index) {
    const Philox4 block = philox(17, 4, index / 4);
    EXPECT_EQ(uniform01(block.word[index % 4]), nn::uniform01(17, nn::RngStream::Augment, index));
  }
}

TEST(Philox, UniformBelowStaysBelowItsBound) {
  EXPECT_EQ(uniform_below(0xffffffffu, 9), 8u);
  EXPECT_EQ(uniform_below(0, 9), 0u);
  EXPECT_EQ(uniform_below(0x80000000u, 2), 1u);
}

}  // namespace
}  // namespace kiln::kernels
