// NumPy .npy files (format versions 1.0, 2.0 and 3.0).
#pragma once

#include <kiln/data/array.h>

#include <filesystem>

namespace kiln::data {

// Reads one .npy array (name left empty). Accepted: little-endian (or
// byte-order-free) u1, i4, i8, f4, f8 in C order, at least one axis. DataError
// naming the file for: bad magic or version, a header that is cut short, larger
// than 64 KiB or not the dict numpy writes, a big-endian dtype, Fortran order,
// another dtype, a 0-d array, and data shorter or longer than the header declares.
Array read_npy(const std::filesystem::path& path);

}  // namespace kiln::data
