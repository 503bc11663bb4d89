// Reading row ranges of the arrays of an HDF5 file (a dataset version, or any file
// with datasets at its root) without loading whole arrays: what the streaming
// loader, verify, diff, validation and drift read through.
#pragma once

#include <kiln/data/dataset.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::data {

class DatasetReader {
 public:
  // DataError naming the file if it is missing or not HDF5.
  explicit DatasetReader(std::filesystem::path file);
  ~DatasetReader();
  DatasetReader(DatasetReader&&) noexcept;
  DatasetReader& operator=(DatasetReader&&) noexcept;

  const std::filesystem::path& file() const noexcept;
  // The datasets at the root, in name order.
  const std::vector<ArrayInfo>& arrays() const noexcept;
  // DataError "<file>: no array named 'x' (arrays: ...)" when absent.
  const ArrayInfo& array(std::string_view name) const;
  // Rows per HDF5 chunk (the whole array when it is not chunked): the unit the
  // loader reads in, since a partial chunk costs a whole inflate.
  std::int64_t chunk_rows(std::string_view name) const;
  // Bytes of one row of `name` (product of shape[1:] times the element size).
  std::int64_t row_bytes(std::string_view name) const;
  // Copies rows [first, first + count) of `name` into `out` (count * row_bytes
  // bytes), converted to the little-endian type of its dtype.
  void read_rows(std::string_view name, std::int64_t first, std::int64_t count,
                 std::uint8_t* out) const;
  // The SHA-256 recorded with the array when it was written (attribute
  // kiln.sha256), or "" for files written without one.
  std::string recorded_sha256(std::string_view name) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Calls visit(first_row, rows, bytes) for consecutive blocks of `name`, each about
// `block_bytes` (whole chunks where possible), in row order; the bytes are valid
// during the call only.
void for_each_block(
    const DatasetReader& reader, std::string_view name,
    const std::function<void(std::int64_t, std::int64_t, const std::uint8_t*)>& visit,
    std::int64_t block_bytes = 4 << 20);

}  // namespace kiln::data
