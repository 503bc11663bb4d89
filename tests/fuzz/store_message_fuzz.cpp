// The TCP store server's request parser (dist/store_message.cpp): the input is
// what one client sent after its handshake, read as the server reads it, request
// after request. Every parse either waits for more bytes, names why the connection
// goes, or yields a request that lies inside the bytes and within the caps.
#include <kiln/dist/store.h>

#include <map>
#include <string>
#include <string_view>

#include "dist/store_message.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string, std::less<>> values;
  std::string out;
  while (true) {
    const kiln::dist::StoreParse parse = kiln::dist::parse_store_request(rest);
    if (!parse.request) break;  // waiting for more, or the connection goes
    const kiln::dist::StoreRequest& request = *parse.request;
    if (!parse.error.empty() || request.size == 0 || request.size > rest.size() ||
        request.key.size() > kiln::dist::kStoreMaxKeyBytes ||
        request.value.size() > kiln::dist::kStoreMaxValueBytes ||
        request.key.data() < rest.data() ||
        request.key.data() + request.key.size() > rest.data() + request.size ||
        (request.op != 'S' && request.op != 'G'))
      __builtin_trap();
    if (request.op == 'S') {
      values[std::string(request.key)] = request.value;
    } else if (const auto found = values.find(request.key); found != values.end()) {
      kiln::dist::append_store_field(out, found->second);
    }
    rest.remove_prefix(request.size);
  }
  return 0;
}
