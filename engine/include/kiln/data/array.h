// A named, typed, C-ordered block of bytes: what IDX/CSV/NPY readers produce and
// what a dataset version stores under /<name>.
#pragma once

#include <kiln/dtype.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::data {

struct Array {
  std::string name;  // "x", "y"
  DType dtype = DType::U8;
  std::vector<std::int64_t> shape;  // C order, first axis = rows
  std::vector<std::uint8_t> bytes;  // little-endian, size = prod(shape) * size_of(dtype)

  std::int64_t rows() const { return shape.empty() ? 0 : shape.front(); }
  std::int64_t elements() const;
  // Elements per row (product of shape[1:]).
  std::int64_t row_elements() const;
};

}  // namespace kiln::data
