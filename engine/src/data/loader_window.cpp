#include "data/loader_window.h"

#include <algorithm>

namespace kiln::data::detail {

WindowBuffer::WindowBuffer(std::vector<std::string> arrays, std::vector<std::int64_t> row_bytes,
                           std::int64_t capacity_rows, const ResidentArrays* resident)
    : arrays_(std::move(arrays)), row_bytes_(std::move(row_bytes)), resident_(resident) {
  if (resident_ != nullptr) return;
  for (const std::int64_t bytes : row_bytes_)
    data_.emplace_back(static_cast<std::size_t>(bytes * capacity_rows));
}

void WindowBuffer::assign(const EpochOrder& order, std::int64_t window,
                          const LoaderGeometry& geometry) {
  window_ = window;
  block_rows_ = geometry.block_rows;
  const auto blocks = order.blocks_of(window);
  blocks_.assign(blocks.begin(), blocks.end());
  block_start_.assign(1, 0);
  for (const std::int64_t block : blocks_)
    block_start_.push_back(block_start_.back() + geometry.rows_of_block(block));
  loaded_blocks_ = 0;
  permutation_ = order.row_permutation(window);
}

bool WindowBuffer::load_next_block(const RowReader& read) {
  if (complete()) return false;
  const auto index = static_cast<std::size_t>(loaded_blocks_);
  const std::int64_t first = blocks_[index] * block_rows_;
  const std::int64_t rows = block_start_[index + 1] - block_start_[index];
  if (resident_ == nullptr)
    for (std::size_t a = 0; a < arrays_.size(); ++a)
      read(a, first, rows, data_[a].data() + block_start_[index] * row_bytes_[a]);
  ++loaded_blocks_;
  return true;
}

const std::uint8_t* WindowBuffer::row(std::size_t array_index, std::int64_t position) const {
  if (resident_ != nullptr)
    return (*resident_)[array_index].data() + sample_id(position) * row_bytes_[array_index];
  const std::uint32_t source = permutation_[static_cast<std::size_t>(position)];
  return data_[array_index].data() + static_cast<std::int64_t>(source) * row_bytes_[array_index];
}

std::int64_t WindowBuffer::sample_id(std::int64_t position) const {
  const std::int64_t source = permutation_[static_cast<std::size_t>(position)];
  const auto after = std::upper_bound(block_start_.begin(), block_start_.end(), source);
  const auto block = static_cast<std::size_t>(after - block_start_.begin()) - 1;
  return blocks_[block] * block_rows_ + (source - block_start_[block]);
}

}  // namespace kiln::data::detail
