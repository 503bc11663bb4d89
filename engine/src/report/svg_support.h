// Private to the report area: what the SVG plots share.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <span>
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

struct Rgb {
  int red, green, blue;
};

// The color at `t` in [0, 1] (clamped) on straight lines between evenly spaced stops
// in RGB: enough for sequential scales whose stops are already perceptually even.
inline std::string color_along(std::span<const Rgb> stops, double t) {
  const double position = std::clamp(t, 0.0, 1.0) * static_cast<double>(stops.size() - 1);
  const std::size_t segment = std::min(static_cast<std::size_t>(position), stops.size() - 2);
  const double local = position - static_cast<double>(segment);
  const Rgb& from = stops[segment];
  const Rgb& to = stops[segment + 1];
  const auto channel = [local](int a, int b) {
    return static_cast<int>(std::lround(a + (b - a) * local));
  };
  return fmt::format("#{:02x}{:02x}{:02x}", channel(from.red, to.red),
                     channel(from.green, to.green), channel(from.blue, to.blue));
}

}  // namespace kiln::report::detail
