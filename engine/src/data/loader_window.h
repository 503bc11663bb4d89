// The rows of one shuffle window held in memory: the streaming loader keeps two
// (the one being served and the next, filled a block at a time). Internal to
// engine/src/data.
#pragma once

#include "data/loader_order.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kiln::data::detail {

// Reads `rows` rows from file row `first` of array number `array` into `out`: the
// HDF5 file, or the loader's resident copy of it.
using RowReader = std::function<void(std::size_t array, std::int64_t first, std::int64_t rows,
                                     std::uint8_t* out)>;

// Whole arrays already in memory, by array number: a resident data set.
using ResidentArrays = std::vector<std::vector<std::uint8_t>>;

class WindowBuffer {
 public:
  // Room for `capacity_rows` rows of each array in `arrays` (row bytes parallel).
  // With `resident`, the window holds no copy: its rows are read where `resident`
  // keeps them (which must stay alive and hold every row), and loading is free.
  WindowBuffer(std::vector<std::string> arrays, std::vector<std::int64_t> row_bytes,
               std::int64_t capacity_rows, const ResidentArrays* resident = nullptr);

  std::int64_t window() const { return window_; }  // -1 when empty
  bool complete() const { return loaded_blocks_ == static_cast<std::int64_t>(blocks_.size()); }

  // Empties the buffer and assigns it `window` of `order`; reads nothing yet.
  void assign(const EpochOrder& order, std::int64_t window, const LoaderGeometry& geometry);
  void clear() { window_ = -1; }
  // Reads the next block not yet loaded; false when none is left.
  bool load_next_block(const RowReader& read);
  void load_all(const RowReader& read) {
    while (load_next_block(read)) {
    }
  }

  // Row of array `array_index` at `position` within the window (after the
  // window's row permutation), and the file row it came from.
  const std::uint8_t* row(std::size_t array_index, std::int64_t position) const;
  std::int64_t sample_id(std::int64_t position) const;

 private:
  std::vector<std::string> arrays_;
  std::vector<std::int64_t> row_bytes_;
  std::vector<std::vector<std::uint8_t>> data_;  // per array, capacity_rows rows
  const ResidentArrays* resident_ = nullptr;     // or rows read in place
  std::int64_t window_ = -1;
  std::int64_t block_rows_ = 1;
  std::vector<std::int64_t> blocks_;       // file blocks, in buffer order
  std::vector<std::int64_t> block_start_;  // buffer row where each block starts, + end
  std::int64_t loaded_blocks_ = 0;
  std::vector<std::uint32_t> permutation_;
};

}  // namespace kiln::data::detail
