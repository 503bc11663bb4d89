// CSV reader for numeric tables. Cells are split on commas (numbers need no
// quoting; a quoted header name is unquoted), surrounding spaces are ignored, blank
// lines are skipped, and every cell must be a whole number in the sense of
// std::from_chars (so "nan" and "inf" are numbers: validation decides about them).
#include <kiln/data/csv.h>
#include <kiln/error.h>

#include "data/byte_source.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

struct Cell {
  std::string_view text;  // trimmed
  std::size_t column;     // 1-based character column where the cell starts
};

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

void split(std::string_view line, std::vector<Cell>& cells) {
  cells.clear();
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    const std::size_t end = comma == std::string_view::npos ? line.size() : comma;
    cells.push_back({trim(line.substr(start, end - start)), start + 1});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

bool is_blank(std::string_view line) { return trim(line).empty(); }

std::vector<std::string> parse_header(std::string_view line) {
  std::vector<Cell> cells;
  split(line, cells);
  std::vector<std::string> names;
  for (const Cell& cell : cells) {
    std::string_view name = cell.text;
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"')
      name = name.substr(1, name.size() - 2);
    names.emplace_back(name);
  }
  return names;
}

bool parse_number(std::string_view text, double& value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);  // from_chars refuses '+'
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

class CsvParser {
 public:
  CsvParser(fs::path path, const std::string& label_column)
      : path_(std::move(path)),
        lines_(detail::open_source(path_), path_),
        label_name_(label_column) {}

  CsvTable parse() {
    read_header();
    std::string line;
    std::vector<Cell> cells;
    while (lines_.next(line)) {
      if (is_blank(line)) continue;
      split(line, cells);
      check_width(cells, line);
      for (std::size_t column = 0; column < cells.size(); ++column) store(cells[column], column);
      ++rows_;
    }
    return finish();
  }

 private:
  [[noreturn]] void fail(std::size_t column, const std::string& what) const {
    throw DataError(
        fmt::format("{}:{}:{}: {}", path_.string(), lines_.line_number(), column, what));
  }

  void read_header() {
    std::string line;
    while (lines_.next(line) && is_blank(line)) {
    }
    if (is_blank(line))
      throw DataError(path_.string() +
                      ": empty CSV file (a header row naming the columns is "
                      "expected)");
    header_ = parse_header(line);
    label_index_ = header_.size();
    for (std::size_t i = 0; i < header_.size(); ++i)
      if (!label_name_.empty() && header_[i] == label_name_) label_index_ = i;
    if (!label_name_.empty() && label_index_ == header_.size())
      fail(1, fmt::format("no label column '{}' in the header (columns: {})", label_name_,
                          fmt::join(header_, ", ")));
  }

  void check_width(const std::vector<Cell>& cells, const std::string& line) const {
    if (cells.size() == header_.size()) return;
    const std::size_t column =
        cells.size() > header_.size() ? cells[header_.size()].column : line.size() + 1;
    fail(column, fmt::format("ragged row: {} cells, but the header has {} columns", cells.size(),
                             header_.size()));
  }

  void store(const Cell& cell, std::size_t column) {
    double value = 0;
    if (!parse_number(cell.text, value))
      fail(cell.column,
           fmt::format("cell '{}' in column '{}' is not a number", cell.text, header_[column]));
    if (column != label_index_) {
      features_.push_back(static_cast<float>(value));
      return;
    }
    labels_.push_back(value);
    labels_integral_ = labels_integral_ && std::isfinite(value) && std::trunc(value) == value &&
                       std::abs(value) <= std::numeric_limits<std::int32_t>::max();
  }

  template <class T>
  static std::vector<std::uint8_t> bytes_of(const std::vector<T>& values) {
    std::vector<std::uint8_t> bytes(values.size() * sizeof(T));
    if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
  }

  CsvTable finish() {
    CsvTable table;
    for (std::size_t i = 0; i < header_.size(); ++i)
      if (i != label_index_) table.feature_columns.push_back(header_[i]);
    table.x.name = "x";
    table.x.dtype = DType::F32;
    table.x.shape = {rows_, static_cast<std::int64_t>(table.feature_columns.size())};
    table.x.bytes = bytes_of(features_);
    if (label_index_ == header_.size()) return table;
    table.y.name = "y";
    table.y.shape = {rows_};
    if (labels_integral_) {
      table.y.dtype = DType::I32;
      table.y.bytes = bytes_of(std::vector<std::int32_t>(labels_.begin(), labels_.end()));
    } else {
      table.y.dtype = DType::F32;
      table.y.bytes = bytes_of(std::vector<float>(labels_.begin(), labels_.end()));
    }
    return table;
  }

  fs::path path_;
  detail::LineReader lines_;
  std::string label_name_;
  std::vector<std::string> header_;
  std::size_t label_index_ = 0;
  std::vector<float> features_;
  std::vector<double> labels_;
  bool labels_integral_ = true;
  std::int64_t rows_ = 0;
};

}  // namespace

CsvTable read_csv(const fs::path& path, const std::string& label_column) {
  return CsvParser(path, label_column).parse();
}

}  // namespace kiln::data
