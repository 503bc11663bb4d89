// The content-id recipe (docs/formats.md) as a streaming hasher, so that an id can
// be computed from whole arrays in memory (content_id) or block by block from a
// file larger than memory (verify_dataset). Internal to engine/src/data.
#pragma once

#include <kiln/dtype.h>
#include <kiln/hash.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::data::detail {

class ContentHasher {
 public:
  // Arrays must be added in name order, each with all its bytes before the next.
  void begin_array(std::string_view name, DType dtype, const std::vector<std::int64_t>& shape);
  void update(const std::uint8_t* bytes, std::size_t size) { hash_.update(bytes, size); }
  // The id. `source`: the version's source record, whose "categories" (the names
  // behind a CSV import's categorical codes) are part of the content.
  std::string finish(const nlohmann::json& source);

 private:
  Sha256 hash_;
};

}  // namespace kiln::data::detail
