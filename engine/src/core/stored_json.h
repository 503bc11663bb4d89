// Private: JSON that kiln stored in a file's metadata (a model's spec, a checkpoint's
// state, a model's preprocessing), read back with a bound on its nesting.
//
// nlohmann::json (3.11) parses iteratively, but copying, comparing and dumping a
// value recurse: a spec nested 100,000 deep parses and then overflows the stack on
// its first copy. Parsing with a depth check stops such a value before it exists.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace kiln {

// Deeper than any spec kiln writes: a model nests at most 32 layers
// (nn/layer.h kMaxLayerDepth), each at most three JSON levels.
inline constexpr int kMaxStoredJsonDepth = 128;

// The JSON in `text`; DataError "<what>: not valid JSON: ..." or "<what>: nests
// deeper than 128 levels".
nlohmann::json parse_stored_json(std::string_view text, const std::string& what,
                                 int max_depth = kMaxStoredJsonDepth);

}  // namespace kiln
