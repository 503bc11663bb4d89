// Which arrays of a source that holds several (an NPZ archive, an HDF5 file) to
// import, and under which names: the `--arrays` / `arrays:` entries of an import.
#pragma once

#include <string>
#include <vector>

namespace kiln::data {

struct ArrayChoice {
  std::string name;    // the array's name in the dataset version
  std::string member;  // what the source calls it
};

// Each entry is "NAME" (member NAME, imported as NAME) or "NAME=MEMBER". ConfigError
// "arrays: ..." for an empty list, an empty name or member, a name the dataset
// store refuses (".", or one holding '/'), and a name given twice.
std::vector<ArrayChoice> parse_array_choices(const std::vector<std::string>& entries);

}  // namespace kiln::data
