// Private to the sweep area: the random numbers of one trial's sampling, drawn from
// kiln's counter-based Philox-4x32-10 (kernels/philox.cuh, the engine's addressing)
// so that a draw depends on (seed, trial number, lane, position) only, never on
// the order in which trials were sampled or on the process that samples them.
#pragma once

#include "kernels/philox.cuh"

#include <cstdint>

namespace kiln::sweep {

// The Philox stream for sweeps; the engine's (kiln/nn/rng.h RngStream) are 1..4.
inline constexpr std::uint32_t kSweepStream = 5;

// Counter layout: trial number in the high 32 bits, then a 12-bit lane that
// separates independent uses within a trial (a parameter's own draws), then a
// 20-bit block index: 2^20 blocks of four words per lane, 4096 lanes.
class TrialRng {
 public:
  TrialRng(std::uint64_t seed, int trial_number, std::uint32_t lane)
      : seed_(seed),
        base_((static_cast<std::uint64_t>(static_cast<std::uint32_t>(trial_number)) << 32) |
              (static_cast<std::uint64_t>(lane & 0xfffu) << 20)) {}

  // Uniform in [0, 1) with 53 random bits (two words).
  double uniform() {
    const std::uint64_t high = next_word() >> 5;  // 27 bits
    const std::uint64_t low = next_word() >> 6;   // 26 bits
    return static_cast<double>((high << 26) | low) * 0x1.0p-53;
  }

  // Uniform integer in [0, bound), bound > 0, by 64-bit multiply-high (Lemire).
  std::uint64_t below(std::uint64_t bound) {
    const std::uint64_t high = next_word();
    const std::uint64_t draw = (high << 32) | next_word();
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(draw) * bound) >> 64);
  }

 private:
  std::uint32_t next_word() {
    if (used_ == 4) {
      block_words_ = kernels::philox(seed_, kSweepStream, base_ | (block_ & 0xfffffu));
      ++block_;
      used_ = 0;
    }
    return block_words_.word[used_++];
  }

  std::uint64_t seed_;
  std::uint64_t base_;
  std::uint64_t block_ = 0;
  kernels::Philox4 block_words_{};
  int used_ = 4;
};

}  // namespace kiln::sweep
