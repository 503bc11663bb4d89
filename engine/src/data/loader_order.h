// The streaming loader's epoch order (see <kiln/data/loader.h>): which blocks form
// each window, and how a window's rows are permuted. Pure functions of (seed,
// epoch, geometry), so that every rank, and a resumed run, computes the same order.
// Internal to engine/src/data.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kiln::data::detail {

struct LoaderGeometry {
  std::int64_t rows = 0;           // N
  std::int64_t block_rows = 1;     // rows per block (the last block may be shorter)
  std::int64_t window_blocks = 1;  // blocks per window (the last window may have fewer)

  std::int64_t blocks() const { return (rows + block_rows - 1) / block_rows; }
  std::int64_t rows_of_block(std::int64_t block) const;
};

class EpochOrder {
 public:
  EpochOrder(const LoaderGeometry& geometry, std::uint64_t seed, std::int64_t epoch, bool shuffle);

  std::int64_t windows() const { return static_cast<std::int64_t>(window_start_.size()) - 1; }
  // The window holding global position `position` (0 <= position < rows).
  std::int64_t window_of(std::int64_t position) const;
  std::int64_t window_start(std::int64_t window) const;
  std::int64_t window_rows(std::int64_t window) const;
  // The blocks of `window`, in the order their rows are laid out in its buffer.
  std::span<const std::int64_t> blocks_of(std::int64_t window) const;
  // position within the window -> row within the window's buffer; identity
  // without shuffling. Fisher-Yates over the Shuffle stream with counter word 3 =
  // window + 1 (word 3 is 0 for nn::permutation, which orders the blocks).
  std::vector<std::uint32_t> row_permutation(std::int64_t window) const;

 private:
  LoaderGeometry geometry_;
  std::uint64_t seed_;
  std::int64_t epoch_;
  bool shuffle_;
  std::vector<std::int64_t> block_order_;
  std::vector<std::int64_t> window_start_;  // windows() + 1 entries, last = rows
};

// Uniform integer in [0, bound) from Philox block (seed; (epoch << 32) | index,
// hi word; stream; word3): the first two words as a 64-bit draw, multiply-high.
std::uint64_t draw_below(std::uint64_t seed, std::uint32_t stream, std::uint64_t counter,
                         std::uint32_t word3, std::uint64_t bound) noexcept;

}  // namespace kiln::data::detail
