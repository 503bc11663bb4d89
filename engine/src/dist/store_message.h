// Private to dist: the requests of kiln's TCP store (tcp_store_server.h has the
// whole wire format), parsed from the bytes a connection has sent so far. A pure
// function, apart from the sockets, so that tests/fuzz can feed it anything.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::dist {

struct StoreRequest {
  char op = 0;             // 'S' (set) or 'G' (get)
  std::string_view key;    // views into the parsed bytes
  std::string_view value;  // 'S' only
  std::size_t size = 0;    // bytes of the whole request, to drop once it is answered
};

struct StoreParse {
  std::optional<StoreRequest> request;  // set once all of its bytes have arrived
  std::string error;  // why the connection must go: an unknown request, a field over its cap
};

// The request at the front of `in`: neither request nor error while more bytes
// must arrive. Keys are capped at kStoreMaxKeyBytes, values at kStoreMaxValueBytes
// (kiln/dist/store.h).
StoreParse parse_store_request(std::string_view in);

// Appends `field` with its 32-bit length in front (host order), as answers carry
// values.
void append_store_field(std::string& out, std::string_view field);

}  // namespace kiln::dist
