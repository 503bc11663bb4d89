// NumPy .npz archives, as numpy.savez (stored) and numpy.savez_compressed
// (deflated) write them: a zip archive whose members are .npy files.
#pragma once

#include <kiln/data/array.h>
#include <kiln/data/array_choice.h>

#include <filesystem>
#include <vector>

namespace kiln::data {

struct NpzArray {
  Array array;         // named as chosen
  std::string member;  // the zip member it was read from, e.g. "images.npy"
};

// Reads the chosen members, each named as numpy.load names it ("images" for the
// member "images.npy") or by its full member name, straight from the archive
// (no temporary files), with the NPY reader's checks. DataError naming the file for
// an archive libzip cannot open or finds inconsistent, a member that is missing
// (listing the members), damaged or not a valid NPY file (naming the member), and
// arrays that disagree on their number of rows.
std::vector<NpzArray> read_npz(const std::filesystem::path& path,
                               const std::vector<ArrayChoice>& choices);

}  // namespace kiln::data
