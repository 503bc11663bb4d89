// Private to the report area: what the SVG plots share.
#pragma once

#include <fmt/format.h>

#include <array>
#include <string>
#include <string_view>

namespace kiln::report::detail {

// Colors that stay apart for the usual color-vision deficiencies (Okabe & Ito,
// "Color Universal Design", 2008), darkest first; a ninth series reuses the first.
inline constexpr std::array<std::string_view, 8> kPalette = {
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"};

inline std::string_view palette_color(std::size_t index) {
  return kPalette[index % kPalette.size()];
}

// SVG coordinates with one decimal: a tenth of a pixel is below what a screen
// shows, and it keeps a 1000-point path to a few kilobytes.
inline std::string coordinate(double value) { return fmt::format("{:.1f}", value); }

// Width of `text` in the reports' sans-serif font, estimated: about 0.6 em per
// character is the average advance of Latin text in DejaVu Sans and Arial.
inline double text_width(std::string_view text, double font_size) {
  return 0.6 * font_size * static_cast<double>(text.size());
}

}  // namespace kiln::report::detail
