#include "data/content_hash.h"

#include <kiln/data/dataset.h>

#include <array>

namespace kiln::data::detail {
namespace {

void hash_u64(Sha256& hash, std::uint64_t value) {
  std::array<std::uint8_t, 8> bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<std::uint8_t>(value >> 8 * i);
  hash.update(bytes.data(), bytes.size());
}

}  // namespace

void ContentHasher::begin_array(std::string_view name, DType dtype,
                                const std::vector<std::int64_t>& shape) {
  hash_.update_field(name);
  hash_.update_field(name_of(dtype));
  hash_u64(hash_, shape.size());
  std::uint64_t bytes = size_of(dtype);
  for (const std::int64_t extent : shape) {
    hash_u64(hash_, static_cast<std::uint64_t>(extent));
    bytes *= static_cast<std::uint64_t>(extent);
  }
  // The byte field's length prefix, as Sha256::update_field writes it; the bytes
  // themselves follow through update().
  hash_u64(hash_, bytes);
}

std::string ContentHasher::finish(const nlohmann::json& source) {
  if (const nlohmann::json categories = categories_of(source); !categories.empty()) {
    hash_.update_field("kiln.categories");
    hash_.update_field(categories.dump());
  }
  return hash_.hex_digest();
}

}  // namespace kiln::data::detail
