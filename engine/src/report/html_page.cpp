#include <kiln/report/html.h>
#include <kiln/report/plot.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace kiln::report {
namespace {

// default-src 'none' blocks every fetch (images, fonts, frames, scripts); inline
// styles are the page's own CSS.
constexpr std::string_view kPolicy = "default-src 'none'; style-src 'unsafe-inline'";

constexpr std::string_view kStyle = R"(
body { font: 14px/1.45 system-ui, "DejaVu Sans", Arial, sans-serif; color: #222;
       margin: 24px auto; max-width: 1180px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.subtitle { color: #555; margin: 0 0 12px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f6f8; }
td { font-variant-numeric: tabular-nums; overflow-wrap: anywhere; max-width: 640px; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
svg { background: #fff; border: 1px solid #e4e4e4; font-family: system-ui, "DejaVu Sans", Arial,
      sans-serif; }
svg .title { font-size: 13px; font-weight: 600; }
svg .tick, svg .legend { font-size: 11px; fill: #333; }
svg .axis-label { font-size: 11px; fill: #555; }
svg .empty { font-size: 12px; fill: #888; }
svg .grid { stroke: #eceff2; }
svg .axis { stroke: #888; }
)";

// "Loss curves" -> "loss-curves".
std::string anchor(std::string_view heading) {
  std::string id;
  for (const char c : heading) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      id += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!id.empty() && id.back() != '-')
      id += '-';
  }
  while (!id.empty() && id.back() == '-') id.pop_back();
  return id;
}

}  // namespace

HtmlPage::HtmlPage(std::string_view title, std::string_view subtitle) : title_(title) {
  body_ = fmt::format("<h1>{}</h1>\n<p class=\"subtitle\">{}</p>\n", escape_xml(title),
                      escape_xml(subtitle));
}

void HtmlPage::close_section() {
  if (in_section_) body_ += "</section>\n";
  in_section_ = false;
}

void HtmlPage::section(std::string_view heading) {
  close_section();
  body_ += fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n", anchor(heading), escape_xml(heading));
  in_section_ = true;
}

void HtmlPage::paragraph(std::string_view text) {
  body_ += fmt::format("<p>{}</p>\n", escape_xml(text));
}

void HtmlPage::table(const std::vector<std::string>& header,
                     const std::vector<std::vector<std::string>>& rows) {
  body_ += "<table>\n";
  if (!header.empty()) {
    body_ += "<tr>";
    for (const auto& name : header) body_ += "<th>" + escape_xml(name) + "</th>";
    body_ += "</tr>\n";
  }
  for (const auto& row : rows) {
    body_ += "<tr>";
    for (std::size_t i = 0; i < std::max(row.size(), header.size()); ++i)
      body_ += "<td>" + (i < row.size() ? escape_xml(row[i]) : std::string()) + "</td>";
    body_ += "</tr>\n";
  }
  body_ += "</table>\n";
}

void HtmlPage::figures(const std::vector<std::string>& svg) {
  if (svg.empty()) return;
  body_ += "<div class=\"figures\">\n";
  for (const auto& figure : svg) body_ += figure + "\n";
  body_ += "</div>\n";
}

std::string HtmlPage::html() const {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n"
      "<meta name=\"generator\" content=\"kiln\">\n<title>{}</title>\n<style>{}</style>\n"
      "</head>\n<body>\n{}{}</body>\n</html>\n",
      kPolicy, escape_xml(title_), kStyle, body_, in_section_ ? "</section>\n" : "");
}

}  // namespace kiln::report
