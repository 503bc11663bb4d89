#include "dist/store_message.h"

#include <kiln/dist/store.h>

#include <fmt/format.h>

#include <cstdint>
#include <cstring>

namespace kiln::dist {
namespace {

// The length-prefixed field at `at`: false while its bytes have not all arrived,
// or when it is over `cap` (then `why` says so).
bool read_field(std::string_view in, std::size_t& at, std::size_t cap, const char* what,
                std::string_view& field, std::string& why) {
  std::uint32_t size = 0;
  if (in.size() < at + sizeof size) return false;
  std::memcpy(&size, in.data() + at, sizeof size);
  if (size > cap) {
    why = fmt::format("sent {} of {} bytes, over the cap of {}", what, size, cap);
    return false;
  }
  if (in.size() < at + sizeof size + size) return false;
  field = in.substr(at + sizeof size, size);
  at += sizeof size + size;
  return true;
}

}  // namespace

StoreParse parse_store_request(std::string_view in) {
  StoreParse parse;
  if (in.empty()) return parse;
  StoreRequest request;
  request.op = in.front();
  if (request.op != 'S' && request.op != 'G') {
    parse.error = fmt::format("sent an unknown request (first byte 0x{:02x})",
                              static_cast<unsigned char>(request.op));
    return parse;
  }
  std::size_t at = 1;
  if (!read_field(in, at, kStoreMaxKeyBytes, "a key", request.key, parse.error) ||
      (request.op == 'S' &&
       !read_field(in, at, kStoreMaxValueBytes, "a value", request.value, parse.error)))
    return parse;
  request.size = at;
  parse.request = request;
  return parse;
}

void append_store_field(std::string& out, std::string_view field) {
  const auto size = static_cast<std::uint32_t>(field.size());
  out.append(reinterpret_cast<const char*>(&size), sizeof size);
  out.append(field);
}

}  // namespace kiln::dist
