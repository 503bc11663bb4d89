// Arrays of an HDF5 file made elsewhere (h5py, netCDF-4, other tools) as kiln
// imports them: chosen by path and named, their stored types mapped to kiln's
// dtypes, their filters and storage checked before anything is read. Used by
// kiln-hdf5-reader (hdf5_reader_main.cpp) and by import.cpp. Internal to
// engine/src/data.
#pragma once

#include <kiln/dtype.h>

#include "data/hdf5_support.h"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::data::hdf5 {

// One array to import: `name` in the dataset version, `path` in the source file.
struct ArraySpec {
  std::string name;
  std::string path;  // "/train/images"
};

// The import's `arrays` entries (NAME or NAME=MEMBER, parse_array_choices, whose
// ConfigErrors they raise) as HDF5 paths: a member without a leading '/' is
// relative to the root group, so a bare "x" is "/x".
std::vector<ArraySpec> array_specs(const std::vector<std::string>& entries);
// One "NAME=PATH" entry, as kiln-hdf5-reader takes it on its command line.
ArraySpec parse_array_spec(const std::string& entry);
std::string format_array_spec(const ArraySpec& spec);  // "x=/train/images"

// Opens the dataset at spec.path, following only links inside the file. DataError
// naming the file and path when nothing is there (listing the file's datasets),
// when it is not a dataset, when a link on the way leads to another file
// (external link), or when its data lives outside the file (external storage, a
// virtual dataset): an imported file may read nothing but itself.
Handle open_source_array(hid_t file, const ArraySpec& spec, const std::filesystem::path& path);

// How a stored element type is imported: H5Dread converts it to `memory`, exactly,
// and the version stores `dtype`. Beyond kiln's own dtypes: u16 becomes i32, u32
// becomes i64, u64 becomes i64 (values past 2^63-1 refused, see check_u64), and
// h5py's bool (an enum of FALSE=0, TRUE=1 over one byte) becomes u8.
struct SourceType {
  DType dtype = DType::U8;
  Handle memory;
  std::string stored;  // the stored type's name when it differs from dtype's: "u16", "bool"
  bool check_u64 = false;
};
SourceType source_type_of(hid_t dataset, const std::filesystem::path& file, std::string_view array);

// DataError naming the array and its first element past 2^63-1, for a u64 source.
void check_u64_range(const std::uint8_t* bytes, std::int64_t elements, std::int64_t first_element,
                     const std::filesystem::path& file, std::string_view array);

// DataError naming the array and the filter when the dataset is compressed with a
// filter this libhdf5 cannot load (no plugin for it on HDF5_PLUGIN_PATH).
void check_filters(hid_t dataset, const std::filesystem::path& file, std::string_view array);

}  // namespace kiln::data::hdf5
