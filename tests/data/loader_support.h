// Synthetic datasets for the streaming loader tests: row i of x starts with i as a
// little-endian i64, so every row a batch delivers can be checked against its
// sample id; y is i % 7.
#pragma once

#include <kiln/data/dataset.h>
#include <kiln/data/loader.h>

#include "data/data_test_support.h"

#include <cstring>

namespace kiln::data::testing {

inline DatasetVersion write_counting_dataset(const std::filesystem::path& registry,
                                             std::int64_t rows, std::int64_t row_bytes) {
  Bytes x(static_cast<std::size_t>(rows * row_bytes));
  Bytes y(static_cast<std::size_t>(rows));
  for (std::int64_t i = 0; i < rows; ++i) {
    std::uint8_t* row = x.data() + i * row_bytes;
    for (std::int64_t j = 0; j < row_bytes; ++j)
      row[j] = static_cast<std::uint8_t>((i * 7 + j) % 251);
    std::memcpy(row, &i, sizeof i);
    y[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i % 7);
  }
  return DatasetStore(registry).put("counting",
                                    {make_array("x", DType::U8, {rows, row_bytes}, std::move(x)),
                                     make_array("y", DType::U8, {rows}, std::move(y))},
                                    {});
}

// The id encoded in row `row` of a batch's x.
inline std::int64_t id_in_row(const Batch& batch, std::int64_t row) {
  const BatchArray& x = batch.array("x");
  std::int64_t id = 0;
  std::memcpy(&id, x.bytes.data() + row * (static_cast<std::int64_t>(x.bytes.size()) / batch.rows),
              sizeof id);
  return id;
}

}  // namespace kiln::data::testing
