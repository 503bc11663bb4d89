// IDX files (the MNIST family's format), plain or gzip-compressed.
#pragma once

#include <kiln/data/array.h>

#include <filesystem>

namespace kiln::data {

// Reads an IDX file into an Array (name left empty). Gzip is detected from the
// content. Throws DataError naming the file for: unreadable file, truncated or
// corrupt gzip stream, bad magic, unknown type code, a size that disagrees with
// the header (too short or trailing bytes).
Array read_idx(const std::filesystem::path& path);

}  // namespace kiln::data
