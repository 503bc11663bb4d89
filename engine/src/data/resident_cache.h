// The resident data sets kept between loaders while a ResidentDataRetention lives
// (kiln/data/loader.h). Internal to engine/src/data.
#pragma once

#include "data/file_identity.h"
#include "data/loader_window.h"

#include <compare>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::data::detail {

using SharedResident = std::shared_ptr<const ResidentArrays>;

// Which rows a resident copy holds: these arrays of this file, whole.
struct ResidentKey {
  FileIdentity file;
  std::vector<std::string> arrays;
  std::int64_t rows = 0;
  auto operator<=>(const ResidentKey&) const = default;
};

// The arrays kept for `key`, or null (none kept, or no retention lives).
SharedResident kept_resident(const ResidentKey& key);

// Keeps `arrays` for `key` while a retention lives, dropping the least recently
// used copies beyond its byte limit; a copy larger than the limit is not kept.
// Does nothing without a retention.
void keep_resident(const ResidentKey& key, SharedResident arrays);

}  // namespace kiln::data::detail
