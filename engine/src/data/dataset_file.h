// Writing a dataset version's HDF5 file, and the reading primitives shared by
// read_dataset_info, read_array and DatasetReader. Internal to engine/src/data.
#pragma once

#include <kiln/data/dataset.h>

#include "data/hdf5_support.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::data::detail {

// Attribute on each array's HDF5 dataset: the SHA-256 of its bytes (C order,
// little-endian), so that verify can name the array that changed.
inline constexpr const char* kArraySha256Attribute = "kiln.sha256";

inline constexpr const char* kDatasetFormat = "kiln-dataset-1";

// Writes a version's file (layout: dataset_file.cpp) array by array and block by
// block, so that data larger than memory can be stored. DataError naming the file
// on any failure. Implemented in dataset_writer.cpp.
class DatasetFileWriter {
 public:
  explicit DatasetFileWriter(std::filesystem::path path);  // creates it; it must not exist
  ~DatasetFileWriter();
  DatasetFileWriter(const DatasetFileWriter&) = delete;
  DatasetFileWriter& operator=(const DatasetFileWriter&) = delete;

  // Starts the next array (closing the one before).
  void begin_array(const ArrayInfo& info);
  // The next `rows` rows of the current array.
  void write_rows(const std::uint8_t* bytes, std::int64_t rows);
  // Closes the current array with its kiln.sha256 attribute.
  void end_array(const std::string& sha256);
  // The rows per HDF5 chunk of the current array: blocks of whole chunks write fastest.
  std::int64_t chunk_rows() const noexcept { return chunk_rows_; }
  // Writes the root attributes of `version` and closes the file.
  void finish(const DatasetVersion& version);

 private:
  // Writes `chunks` whole chunks of the current array, deflated in parallel.
  void write_chunks(const std::uint8_t* bytes, std::int64_t chunks);

  std::filesystem::path path_;
  hdf5::Handle file_;
  hdf5::Handle dataset_;
  hdf5::Handle memory_type_;
  ArrayInfo info_;
  std::int64_t written_rows_ = 0;
  std::int64_t chunk_rows_ = 1;
};

// The version stored at `file`, if any. A file that cannot be read (a disk fault,
// a hand edit) is reported when `report_damage` and treated as absent, so that
// importing the same data again repairs it instead of failing forever.
std::optional<DatasetVersion> stored_version(const std::filesystem::path& file, bool report_damage);

// Opens an existing HDF5 file read-only, after kiln-hdf5-reader read it without
// crashing (hdf5_reader_process.h); DataError naming it if either fails.
hdf5::Handle open_file(const std::filesystem::path& path);
// Bytes of one row (the first axis's element) of an array of this dtype and shape.
std::int64_t row_bytes(const ArrayInfo& info);

// Opens the dataset `name` directly under the root group; DataError listing the
// root datasets when there is none of that name.
hdf5::Handle open_array(hid_t file, const std::string& name, const std::filesystem::path& path);
// Reads rows [first, first + count) of a dataset described by `info`, converted to
// `memory_type`, into `out`.
void read_rows(hid_t dataset, hid_t memory_type, const ArrayInfo& info, std::int64_t first,
               std::int64_t count, std::uint8_t* out, const std::filesystem::path& path);
ArrayInfo describe_dataset(hid_t dataset, const std::string& name,
                           const std::filesystem::path& path);
// The extents of a dataset, each and their product in bytes of `dtype` checked
// (DataError naming the file and array when impossibly large).
std::vector<std::int64_t> read_shape(hid_t dataset, std::string_view name, DType dtype,
                                     const std::filesystem::path& path);
// The datasets directly under the root group, in name order.
std::vector<ArrayInfo> read_array_infos(hid_t file, const std::filesystem::path& path);

}  // namespace kiln::data::detail
