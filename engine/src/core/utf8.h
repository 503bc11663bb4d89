// Private: UTF-8 validation for text read from files and command lines before it
// becomes JSON, whose strings must be UTF-8 (nlohmann::json throws type_error on
// dumping anything else).
#pragma once

#include <cstddef>
#include <string_view>

namespace kiln {

// Offset of the first byte of `text` that does not belong to a well-formed UTF-8
// sequence (overlong forms, surrogates and code points above U+10FFFF included),
// or std::string_view::npos when `text` is valid UTF-8.
std::size_t first_invalid_utf8(std::string_view text) noexcept;

inline bool is_valid_utf8(std::string_view text) noexcept {
  return first_invalid_utf8(text) == std::string_view::npos;
}

}  // namespace kiln
