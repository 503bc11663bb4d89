// The NPY reader over any byte source, for NPY files and for the members of an NPZ
// archive alike. Internal to engine/src/data.
#pragma once

#include <kiln/data/array.h>

#include "data/byte_source.h"

#include <string_view>

namespace kiln::data::detail {

// Reads one NPY array (name left empty) from `source`, which must end with it. The
// checks of kiln::data::read_npy; each DataError starts "<where>: ".
Array read_npy(ByteSource& source, std::string_view where);

}  // namespace kiln::data::detail
