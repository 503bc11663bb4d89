// Writing a dataset version's HDF5 file (reading is public: read_dataset_info,
// read_array in <kiln/data/dataset.h>). Internal to engine/src/data.
#pragma once

#include <kiln/data/dataset.h>

#include <filesystem>
#include <vector>

namespace kiln::data::detail {

// Creates `path` (which must not exist) holding `arrays` and the attributes of
// `version` (id, name, created, parent, source); the layout is described in
// dataset_file.cpp. Throws DataError naming `path` on any failure.
void write_dataset_file(const std::filesystem::path& path, const DatasetVersion& version,
                        const std::vector<Array>& arrays);

}  // namespace kiln::data::detail
