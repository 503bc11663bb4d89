// Writing a dataset version's HDF5 file, and the reading primitives shared by
// read_dataset_info, read_array and DatasetReader. Internal to engine/src/data.
#pragma once

#include <kiln/data/dataset.h>

#include "data/hdf5_support.h"

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::data::detail {

// Attribute on each array's HDF5 dataset: the SHA-256 of its bytes (C order,
// little-endian), so that verify can name the array that changed.
inline constexpr const char* kArraySha256Attribute = "kiln.sha256";

// Creates `path` (which must not exist) holding `arrays` and the attributes of
// `version` (id, name, created, parent, source); the layout is described in
// dataset_file.cpp. Throws DataError naming `path` on any failure.
void write_dataset_file(const std::filesystem::path& path, const DatasetVersion& version,
                        const std::vector<Array>& arrays);

// Opens an existing HDF5 file read-only, after kiln-hdf5-reader read it without
// crashing (hdf5_reader_process.h); DataError naming it if either fails.
hdf5::Handle open_file(const std::filesystem::path& path);
// Opens the dataset `name` directly under the root group; DataError listing the
// root datasets when there is none of that name.
hdf5::Handle open_array(hid_t file, const std::string& name, const std::filesystem::path& path);
// Reads rows [first, first + count) of a dataset described by `info`, converted to
// `memory_type`, into `out`.
void read_rows(hid_t dataset, hid_t memory_type, const ArrayInfo& info, std::int64_t first,
               std::int64_t count, std::uint8_t* out, const std::filesystem::path& path);
ArrayInfo describe_dataset(hid_t dataset, const std::string& name,
                           const std::filesystem::path& path);
// The datasets directly under the root group, in name order.
std::vector<ArrayInfo> read_array_infos(hid_t file, const std::filesystem::path& path);

}  // namespace kiln::data::detail
