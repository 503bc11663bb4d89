// The content-id recipe (docs/formats.md) as a streaming hasher, so that an id can
// be computed from whole arrays in memory (content_id) or block by block from a
// file larger than memory (verify_dataset). Internal to engine/src/data.
#pragma once

#include <kiln/dtype.h>
#include <kiln/hash.h>

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
  std::string finish() { return hash_.hex_digest(); }

 private:
  Sha256 hash_;
};

}  // namespace kiln::data::detail
