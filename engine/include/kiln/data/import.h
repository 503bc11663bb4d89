// Importing source files (IDX, CSV, NPY, NPZ, HDF5) as a dataset version: what `kiln
// data import` and the `import` stage run. Every source is read and checked before
// anything is written, so a bad input leaves the dataset store untouched.
#pragma once

#include <kiln/data/dataset.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::data {

enum class SourceFormat { Auto, Idx, Csv, Npy, Npz, Hdf5 };

std::string_view name_of(SourceFormat format) noexcept;
// "auto", "idx", "csv", "npy", "npz", "hdf5"; nullopt for anything else.
std::optional<SourceFormat> source_format_from_name(std::string_view name) noexcept;
// From the content (gzip looked through): NPY magic, zip magic (NPZ), HDF5
// signature, IDX's two leading zero bytes; failing those, from the name (.npy,
// .npz, .h5, .hdf5, .csv, .txt, .idx, "-ubyte"), so that a damaged file is read by
// the reader its name promises and gets its error; failing that, text is CSV.
// DataError otherwise.
SourceFormat detect_format(const std::filesystem::path& file);

struct ImportOptions {
  // IDX or NPY: one file (x) or two (x, then y: the labels, one per row).
  // CSV: one table; NPZ: one archive, HDF5: one file, whose `arrays` are copied.
  std::vector<std::filesystem::path> sources;
  std::string name;
  SourceFormat format = SourceFormat::Auto;  // Auto: each file's own, detected
  std::string label_column = "label";        // CSV: the label column ("" for none)
  // CSV: the field delimiter, one character or "tab".
  std::string delimiter = ",";
  bool header = true;                        // CSV: false names columns "0", "1", ...
  std::vector<std::string> feature_columns;  // CSV: x's columns; empty: all the others
  std::vector<std::string> ignored_columns;  // CSV: columns dropped
  // CSV: feature columns of category names, coded in x (kiln/data/csv.h); their
  // names go to source["categories"].
  std::vector<std::string> categorical_columns;
  // NPZ and HDF5: which arrays to import, each "NAME" or "NAME=MEMBER"
  // (kiln/data/array_choice.h): the version's array NAME comes from the archive's
  // member MEMBER (NPZ) or from the dataset at path MEMBER (HDF5: `x=/train/images`;
  // a bare `x` is `/x`). HDF5's u16, u32, u64 and h5py's bool are widened to i32,
  // i64, i64 and u8 (source["converted_from"]).
  std::vector<std::string> arrays = {"x", "y"};
  std::string parent;  // id, unique id prefix or name of a stored version; "" for none
};

struct ImportedData {
  std::vector<Array> arrays;
  nlohmann::json source;  // {"format", "files": [{"path", "sha256", "format", "role"}], ...}
};

// Reads and checks the sources; writes nothing. ConfigError for a wrong number or
// mix of files; DataError naming the file for bad data.
ImportedData read_sources(const ImportOptions& options);

// read_sources, then DatasetStore::put with the parent resolved to its full id
// (ConfigError if no stored version matches it).
DatasetVersion import_dataset(DatasetStore& store, const ImportOptions& options);

}  // namespace kiln::data
