#include "data/loader_order.h"

#include <kiln/nn/rng.h>

#include <algorithm>
#include <numeric>

namespace kiln::data::detail {

std::int64_t LoaderGeometry::rows_of_block(std::int64_t block) const {
  return std::min(block_rows, rows - block * block_rows);
}

std::uint64_t draw_below(std::uint64_t seed, std::uint32_t stream, std::uint64_t counter,
                         std::uint32_t word3, std::uint64_t bound) noexcept {
  const auto block = nn::philox4x32_raw(
      {static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32), stream,
       word3},
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
  const std::uint64_t draw = block[0] | (static_cast<std::uint64_t>(block[1]) << 32);
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(draw) * bound) >> 64);
}

EpochOrder::EpochOrder(const LoaderGeometry& geometry, std::uint64_t seed, std::int64_t epoch,
                       bool shuffle)
    : geometry_(geometry), seed_(seed), epoch_(epoch), shuffle_(shuffle) {
  const std::int64_t blocks = geometry.blocks();
  if (shuffle) {
    block_order_ = nn::permutation(blocks, seed, static_cast<std::uint64_t>(epoch));
  } else {
    block_order_.resize(static_cast<std::size_t>(blocks));
    std::iota(block_order_.begin(), block_order_.end(), std::int64_t{0});
  }
  window_start_.push_back(0);
  for (std::int64_t first = 0; first < blocks; first += geometry.window_blocks) {
    std::int64_t rows = 0;
    for (std::int64_t i = first; i < std::min(blocks, first + geometry.window_blocks); ++i)
      rows += geometry.rows_of_block(block_order_[static_cast<std::size_t>(i)]);
    window_start_.push_back(window_start_.back() + rows);
  }
}

std::int64_t EpochOrder::window_of(std::int64_t position) const {
  const auto after = std::upper_bound(window_start_.begin(), window_start_.end(), position);
  return static_cast<std::int64_t>(after - window_start_.begin()) - 1;
}

std::int64_t EpochOrder::window_start(std::int64_t window) const {
  return window_start_[static_cast<std::size_t>(window)];
}

std::int64_t EpochOrder::window_rows(std::int64_t window) const {
  return window_start(window + 1) - window_start(window);
}

std::span<const std::int64_t> EpochOrder::blocks_of(std::int64_t window) const {
  const std::int64_t first = window * geometry_.window_blocks;
  const std::int64_t count =
      std::min(geometry_.window_blocks, static_cast<std::int64_t>(block_order_.size()) - first);
  return std::span<const std::int64_t>(block_order_)
      .subspan(static_cast<std::size_t>(first), static_cast<std::size_t>(count));
}

std::vector<std::uint32_t> EpochOrder::row_permutation(std::int64_t window) const {
  std::vector<std::uint32_t> order(static_cast<std::size_t>(window_rows(window)));
  std::iota(order.begin(), order.end(), std::uint32_t{0});
  if (!shuffle_) return order;
  const std::uint64_t epoch_base = static_cast<std::uint64_t>(epoch_) << 32;
  const auto word3 = static_cast<std::uint32_t>(window + 1);
  for (std::size_t i = order.size(); i-- > 1;) {
    const std::uint64_t j = draw_below(seed_, static_cast<std::uint32_t>(nn::RngStream::Shuffle),
                                       epoch_base | i, word3, i + 1);
    std::swap(order[i], order[j]);
  }
  return order;
}

}  // namespace kiln::data::detail
