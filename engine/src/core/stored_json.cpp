#include "core/stored_json.h"

#include <kiln/error.h>

#include <fmt/format.h>

namespace kiln {

nlohmann::json parse_stored_json(std::string_view text, const std::string& what, int max_depth) {
  // Throwing at the first container past the limit leaves nothing deeper built.
  auto guard = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    using Event = nlohmann::json::parse_event_t;
    if ((event == Event::object_start || event == Event::array_start) && depth >= max_depth)
      throw DataError(fmt::format("{}: nests deeper than {} levels", what, max_depth));
    return true;
  };
  try {
    return nlohmann::json::parse(text, guard);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON: {}", what, e.what()));
  }
}

}  // namespace kiln
