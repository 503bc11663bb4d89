// What the sweep report tests look for in a page or a figure, beside the report
// tests' helpers (plots by title, counts, references off the page).
#pragma once

#include <regex>
#include <string>

#include "report/report_test_support.h"

namespace kiln::test {

// False when "nan", "inf" or "infinity" appears as a word (any case): what
// fmt or printf make of a non-finite number, in a coordinate or a text.
inline bool no_non_finite_numbers(const std::string& text) {
  static const std::regex word(R"re((^|[^a-z])(nan|inf|infinity)([^a-z]|$))re", std::regex::icase);
  return !std::regex_search(text, word);
}

// The <svg ...>...</svg> element whose aria-label is `label`; empty if none.
inline std::string svg_labelled(const std::string& page, const std::string& label) {
  const std::size_t at = page.find("aria-label=\"" + label + "\"");
  if (at == std::string::npos) return "";
  const std::size_t start = page.rfind("<svg", at);
  const std::size_t end = page.find("</svg>", at);
  return page.substr(start, end + 6 - start);
}

// The parts of `svg` between successive occurrences of `open` (each part starts
// with it), e.g. the axes of a parallel-coordinates plot.
inline std::vector<std::string> parts_from(const std::string& svg, const std::string& open) {
  std::vector<std::string> parts;
  for (std::size_t at = svg.find(open); at != std::string::npos;) {
    const std::size_t next = svg.find(open, at + 1);
    parts.push_back(svg.substr(at, next == std::string::npos ? std::string::npos : next - at));
    at = next;
  }
  return parts;
}

}  // namespace kiln::test
