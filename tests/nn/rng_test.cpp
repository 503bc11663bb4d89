#include <kiln/error.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <vector>

namespace kiln::nn {
namespace {

using Words = std::array<std::uint32_t, 4>;

// Random123's known-answer vectors for philox4x32 with 10 rounds (file
// tests/kat_vectors of github.com/DEShawResearch/random123): counter, key, output.
struct KnownAnswer {
  Words counter;
  std::array<std::uint32_t, 2> key;
  Words output;
};
constexpr std::array<KnownAnswer, 3> kRandom123Vectors{{
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
}};

TEST(Philox, MatchesRandom123KnownAnswers) {
  for (const KnownAnswer& kat : kRandom123Vectors)
    EXPECT_EQ(philox4x32_raw(kat.counter, kat.key), kat.output);
}

TEST(Philox, EngineAddressingIsTheDocumentedCounterLayout) {
  const std::uint64_t seed = 0x0123456789abcdefULL;
  const std::uint64_t counter = 0xfedcba9876543210ULL;
  const Words expected =
      philox4x32_raw({0x76543210u, 0xfedcba98u, 7u, 0u}, {0x89abcdefu, 0x01234567u});
  EXPECT_EQ(philox4x32(seed, 7, counter), expected);
  EXPECT_EQ(philox4x32(0, 0, 0), kRandom123Vectors[0].output);
}

TEST(Philox, StreamsSeedsAndCountersGiveDifferentBlocks) {
  const Words base = philox4x32(42, 1, 0);
  EXPECT_NE(base, philox4x32(42, 2, 0));
  EXPECT_NE(base, philox4x32(43, 1, 0));
  EXPECT_NE(base, philox4x32(42, 1, 1));
  EXPECT_NE(base, philox4x32(42, 1, std::uint64_t{1} << 32));
}

TEST(Uniform01, IsTheTop24BitsOfTheIndexedWord) {
  for (std::uint64_t index : {0ull, 1ull, 2ull, 3ull, 4ull, 4097ull, (1ull << 40) + 3}) {
    const Words block = philox4x32(9, static_cast<std::uint32_t>(RngStream::Dropout), index / 4);
    const float expected = static_cast<float>(block[index % 4] >> 8) / 16777216.0f;
    EXPECT_EQ(uniform01(9, RngStream::Dropout, index), expected) << "index " << index;
  }
}

TEST(Uniform01, LiesInUnitIntervalWithUniformMoments) {
  constexpr int kDraws = 200000;
  double sum = 0.0, sum_squares = 0.0;
  float low = 1.0f, high = 0.0f;
  for (int i = 0; i < kDraws; ++i) {
    const float u = uniform01(2024, RngStream::Augment, static_cast<std::uint64_t>(i));
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    low = std::min(low, u);
    high = std::max(high, u);
    sum += u;
    sum_squares += static_cast<double>(u) * u;
  }
  const double mean = sum / kDraws;
  const double variance = sum_squares / kDraws - mean * mean;
  // Standard error of the mean: sqrt(1/12 / 2e5) = 6.5e-4; allow 5 of them.
  EXPECT_NEAR(mean, 0.5, 3.3e-3);
  EXPECT_NEAR(variance, 1.0 / 12.0, 2e-3);
  EXPECT_LT(low, 1e-4f);
  EXPECT_GT(high, 1.0f - 1e-4f);
}

TEST(UniformBelow, StaysBelowTheBoundAndFillsBucketsEvenly) {
  constexpr int kBound = 10;
  constexpr int kDraws = 100000;
  std::array<int, kBound> counts{};
  for (int i = 0; i < kDraws; ++i) {
    const auto value = uniform_below(5, RngStream::Shuffle, static_cast<std::uint64_t>(i), kBound);
    ASSERT_LT(value, static_cast<std::uint64_t>(kBound));
    ++counts[value];
  }
  // Binomial(1e5, 0.1): sd = 95; allow 5 sd.
  for (const int count : counts) EXPECT_NEAR(count, kDraws / kBound, 475);
  EXPECT_EQ(uniform_below(5, RngStream::Shuffle, 3, 1), 0u);
}

TEST(UniformBelow, UsesTheDocumentedWordsOfABlock) {
  const Words block = philox4x32(11, static_cast<std::uint32_t>(RngStream::Shuffle), 3);
  const std::uint64_t draw = block[2] | (static_cast<std::uint64_t>(block[3]) << 32);
  const std::uint64_t bound = 1000003;
  const auto expected =
      static_cast<std::uint64_t>((static_cast<unsigned __int128>(draw) * bound) >> 64);
  EXPECT_EQ(uniform_below(11, RngStream::Shuffle, 7, bound),
            expected);  // draw 7 = block 3, words 2-3
}

bool is_permutation_of_range(std::vector<std::int64_t> order) {
  std::sort(order.begin(), order.end());
  for (std::size_t i = 0; i < order.size(); ++i)
    if (order[i] != static_cast<std::int64_t>(i)) return false;
  return true;
}

TEST(Permutation, IsAPermutationAndDeterministic) {
  for (const std::int64_t n : {0, 1, 2, 7, 1000, 60000}) {
    const auto order = permutation(n, 77, 3);
    ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
    EXPECT_TRUE(is_permutation_of_range(order)) << "n = " << n;
    EXPECT_EQ(order, permutation(n, 77, 3)) << "n = " << n;
  }
}

TEST(Permutation, DiffersAcrossEpochsAndSeeds) {
  const auto base = permutation(1000, 77, 0);
  EXPECT_NE(base, permutation(1000, 77, 1));
  EXPECT_NE(base, permutation(1000, 78, 0));
  std::vector<std::int64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(base, identity);
}

TEST(Permutation, FollowsTheDocumentedFisherYates) {
  const std::uint64_t seed = 99, epoch = 5;
  std::vector<std::int64_t> expected{0, 1, 2, 3, 4, 5};
  for (std::uint64_t i = expected.size() - 1; i > 0; --i)
    std::swap(expected[i],
              expected[uniform_below(seed, RngStream::Shuffle, (epoch << 32) | i, i + 1)]);
  EXPECT_EQ(permutation(6, seed, epoch), expected);
}

// A real Fisher-Yates makes all n! orders equally likely; the naive "swap with any
// slot" shuffle does not (for n = 3 it gives some orders 4/27 and others 5/27).
TEST(Permutation, AllOrdersOfThreeAreEquallyLikely) {
  constexpr int kEpochs = 24000;
  std::map<std::vector<std::int64_t>, int> counts;
  for (int epoch = 0; epoch < kEpochs; ++epoch)
    ++counts[permutation(3, 123, static_cast<std::uint64_t>(epoch))];
  ASSERT_EQ(counts.size(), 6u);
  // Binomial(24000, 1/6): sd = 58; allow 5 sd. The naive shuffle is 444 off.
  for (const auto& [order, count] : counts) EXPECT_NEAR(count, kEpochs / 6, 290);
}

TEST(Permutation, RejectsNegativeSizes) { EXPECT_THROW(permutation(-1, 1, 0), InternalError); }

}  // namespace
}  // namespace kiln::nn
