// A static, self-contained HTML page for kiln's reports: inline CSS, inline SVG
// (from plot.h), no scripts, and a Content-Security-Policy that forbids every
// fetch, so a page opened from disk shows the same offline as online and cannot
// call anywhere.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kiln::report {

class HtmlPage {
 public:
  // `title` is the <title> and the <h1>; `subtitle` a line under it.
  HtmlPage(std::string_view title, std::string_view subtitle);

  // Starts a <section> with an <h2> (and an id made from the heading).
  void section(std::string_view heading);
  void paragraph(std::string_view text);
  // Cells are text (escaped); a row shorter than the header is padded. An empty
  // header makes a table without a header row.
  void table(const std::vector<std::string>& header,
             const std::vector<std::vector<std::string>>& rows);
  // Figures (SVG markup from plot.h, inserted as it is) side by side, wrapping.
  void figures(const std::vector<std::string>& svg);

  // The whole document.
  std::string html() const;

 private:
  void close_section();

  std::string title_;
  std::string body_;
  bool in_section_ = false;
};

}  // namespace kiln::report
