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

// Element `index` of little-endian bytes of `dtype`, as a double (f16 and bf16
// widened exactly; i64 beyond 2^53 rounded).
double element_as_double(const std::uint8_t* bytes, DType dtype, std::int64_t index) noexcept;
// Element `index` of an integer dtype (u8, i8, i16, i32, i64) as i64.
std::int64_t element_as_integer(const std::uint8_t* bytes, DType dtype,
                                std::int64_t index) noexcept;
bool is_integer(DType dtype) noexcept;
bool is_floating(DType dtype) noexcept;

}  // namespace kiln::data
