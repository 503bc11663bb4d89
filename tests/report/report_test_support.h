// What the report tests look for in a page (kiln's HTML or Chromium's DOM dump):
// the plots with their curves, heat map cells, and URLs that would leave the page.
#pragma once

#include <map>
#include <regex>
#include <string>
#include <vector>

namespace kiln::test {

struct PlotInPage {
  int declared_curves = -1;  // its data-curves attribute
  int paths = 0;             // <path class="curve"> elements inside it
  int markers = 0;           // <circle> dots
  std::vector<std::string> path_data;
};

// Plots by title (their aria-label).
inline std::map<std::string, PlotInPage> plots_in(const std::string& page) {
  static const std::regex svg(
      R"re(<svg class="plot"[^>]*aria-label="([^"]*)"[^>]*data-curves="(\d+)"[^>]*>)re");
  static const std::regex path(R"re(<path class="curve"[^>]*\sd="([^"]*)")re");
  std::map<std::string, PlotInPage> plots;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), svg); it != std::sregex_iterator();
       ++it) {
    const std::size_t start = static_cast<std::size_t>(it->position() + it->length());
    const std::string body = page.substr(start, page.find("</svg>", start) - start);
    PlotInPage plot;
    plot.declared_curves = std::stoi((*it)[2]);
    for (auto p = std::sregex_iterator(body.begin(), body.end(), path); p != std::sregex_iterator();
         ++p) {
      ++plot.paths;
      plot.path_data.push_back((*p)[1]);
    }
    for (std::size_t at = body.find("<circle"); at != std::string::npos;
         at = body.find("<circle", at + 1))
      ++plot.markers;
    plots[(*it)[1]] = plot;
  }
  return plots;
}

inline int count_of(const std::string& text, const std::string& what) {
  int found = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++found;
  return found;
}

// src/href/xlink:href values and url(...) references that point off the page.
inline std::vector<std::string> external_references(const std::string& page) {
  static const std::regex reference(
      R"re((?:src|href|action|poster|data)\s*=\s*["']?([^"'\s>]*)|url\(\s*["']?([^"')]*))re",
      std::regex::icase);
  std::vector<std::string> external;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), reference);
       it != std::sregex_iterator(); ++it) {
    const std::string target = (*it)[1].matched ? (*it)[1].str() : (*it)[2].str();
    if (target.empty() || target[0] == '#') continue;  // a reference inside the page
    external.push_back(target);
  }
  return external;
}

}  // namespace kiln::test
