// CSV reader for numeric tables, after RFC 4180 with the leniencies of the files
// people have: spaces around a field are ignored (inside quotes they are kept),
// blank lines between records are skipped, the last record needs no line end. A
// number is whatever std::from_chars reads in full (a leading '+' allowed), so
// "nan" and "inf" are numbers: NaN counts as missing, infinity is for validation
// to judge. Categorical columns hold text, coded as described in kiln/data/csv.h.
#include <kiln/data/csv.h>
#include <kiln/error.h>

#include "data/byte_source.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string_view>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

struct Field {
  std::size_t begin = 0, end = 0;  // the unquoted text, in RecordReader's buffer
  std::int64_t line = 0;           // where the field starts: 1-based line ...
  std::size_t column = 0;          // ... and character column
};

// Splits a source into records of fields. A quoted field may span lines; a record
// may then span lines too, up to kMaxLineBytes in all (LineReader caps each line).
class RecordReader {
 public:
  RecordReader(const fs::path& path, char delimiter)
      : path_(path), lines_(detail::open_source(path), path), delimiter_(delimiter) {}

  // False at the end of the data.
  bool next(std::vector<Field>& fields) {
    fields.clear();
    text_.clear();
    do {
      if (!lines_.next(line_)) return false;
    } while (is_blank(line_));
    first_line_ = lines_.line_number();
    record_bytes_ = line_.size();
    std::size_t at = 0;
    for (;;) {
      fields.push_back(read_field(at));
      if (at >= line_.size()) return true;
      ++at;  // past the delimiter
    }
  }

  std::string_view text(const Field& field) const {
    return std::string_view(text_).substr(field.begin, field.end - field.begin);
  }
  // The last line of the record just read, and the column just past its end.
  std::int64_t last_line() const noexcept { return lines_.line_number(); }
  std::size_t end_column() const noexcept { return line_.size() + 1; }
  [[noreturn]] void fail(std::int64_t line, std::size_t column, const std::string& what) const {
    throw DataError(fmt::format("{}:{}:{}: {}", path_.string(), line, column, what));
  }

 private:
  bool is_space(char c) const { return c == ' ' || (c == '\t' && delimiter_ != '\t'); }
  bool is_blank(std::string_view line) const {
    return std::all_of(line.begin(), line.end(), [this](char c) { return is_space(c); });
  }
  void skip_spaces(std::size_t& at) const {
    while (at < line_.size() && is_space(line_[at])) ++at;
  }

  // Reads the field starting at `at`, leaving `at` on the delimiter after it or at
  // the end of the line.
  Field read_field(std::size_t& at) {
    Field field{text_.size(), 0, lines_.line_number(), at + 1};
    skip_spaces(at);
    if (at < line_.size() && line_[at] == '"') {
      read_quoted(at + 1, at, field);
    } else {
      const std::size_t end = std::min(line_.find(delimiter_, at), line_.size());
      std::size_t last = end;
      while (last > at && is_space(line_[last - 1])) --last;
      text_.append(line_, at, last - at);
      at = end;
    }
    field.end = text_.size();
    return field;
  }

  // The text of a quoted field from `from` (just past its opening quote) to its
  // closing quote, over as many lines as it takes; `at` ends past the closing quote
  // and the spaces after it.
  void read_quoted(std::size_t from, std::size_t& at, const Field& field) {
    const std::size_t quote_column = from;
    const std::int64_t quote_line = lines_.line_number();
    for (;;) {
      const std::size_t quote = line_.find('"', from);
      if (quote == std::string::npos) {
        text_.append(line_, from);
        text_ += '\n';
        next_line_of_field(quote_line, quote_column);
        from = 0;
        continue;
      }
      text_.append(line_, from, quote - from);
      if (quote + 1 < line_.size() && line_[quote + 1] == '"') {
        text_ += '"';
        from = quote + 2;
        continue;
      }
      at = quote + 1;
      break;
    }
    skip_spaces(at);
    if (at < line_.size() && line_[at] != delimiter_)
      fail(lines_.line_number(), at + 1,
           fmt::format("'{}' after the closing quote of the field that starts at {}:{} (a quote "
                       "inside a quoted field is written twice: \"\")",
                       line_[at], field.line, field.column));
  }

  void next_line_of_field(std::int64_t quote_line, std::size_t quote_column) {
    if (!lines_.next(line_))
      fail(quote_line, quote_column, "the quoted field that starts here is not closed");
    record_bytes_ += 1 + line_.size();
    if (record_bytes_ > detail::kMaxLineBytes)
      fail(lines_.line_number(), 1,
           fmt::format("the record that starts on line {} is longer than {} bytes, the most "
                       "kiln reads in one record (is a quote not closed?)",
                       first_line_, detail::kMaxLineBytes));
  }

  const fs::path& path_;
  detail::LineReader lines_;
  char delimiter_;
  std::string line_;  // the current physical line
  std::string text_;  // the record's fields, unquoted, one after another
  std::int64_t first_line_ = 0;
  std::size_t record_bytes_ = 0;
};

bool parse_number(std::string_view text, double& value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);  // from_chars refuses '+'
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

void check_options(const CsvOptions& options) {
  if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r')
    throw ConfigError("CSV: the delimiter cannot be a quote or a line break");
  const auto listed = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  for (const auto* names :
       {&options.feature_columns, &options.ignored_columns, &options.categorical_columns})
    for (auto it = names->begin(); it != names->end(); ++it)
      if (std::find(std::next(it), names->end(), *it) != names->end())
        throw ConfigError(fmt::format("CSV: column '{}' is listed twice", *it));
  for (const std::string& name : options.feature_columns)
    if (listed(options.ignored_columns, name))
      throw ConfigError(fmt::format("CSV: column '{}' is both a feature and ignored", name));
  if (!options.label_column.empty() && (listed(options.feature_columns, options.label_column) ||
                                        listed(options.ignored_columns, options.label_column) ||
                                        listed(options.categorical_columns, options.label_column)))
    throw ConfigError(
        fmt::format("CSV: column '{}' is the label; it cannot also be a feature or ignored",
                    options.label_column));
  for (const std::string& name : options.categorical_columns) {
    if (listed(options.ignored_columns, name))
      throw ConfigError(fmt::format("CSV: column '{}' is both categorical and ignored", name));
    if (!options.feature_columns.empty() && !listed(options.feature_columns, name))
      throw ConfigError(
          fmt::format("CSV: categorical column '{}' is not among the feature columns ({})", name,
                      fmt::join(options.feature_columns, ", ")));
  }
}

enum class Role { Dropped, Feature, Label };

// Codes are stored in f32, exact up to 2^24; one-hot encoding stops far below that.
constexpr std::size_t kMaxCategories = 65536;

class CsvParser {
 public:
  CsvParser(const fs::path& path, const CsvOptions& options)
      : path_(path), options_(options), records_(path_, options.delimiter) {}

  CsvTable parse() {
    read_names();
    assign_roles();
    if (!options_.header) store(fields_);
    while (records_.next(fields_)) store(fields_);
    return finish();
  }

 private:
  // The header's names, or "0", "1", ... for as many fields as the first record has.
  void read_names() {
    if (!records_.next(fields_))
      throw DataError(fmt::format("{}: empty CSV file (no records{})", path_.string(),
                                  options_.header ? "; a header row naming the columns" : ""));
    header_line_ = records_.last_line();
    for (std::size_t i = 0; i < fields_.size(); ++i)
      names_.emplace_back(options_.header ? std::string(records_.text(fields_[i]))
                                          : std::to_string(i));
  }

  // The one column named `name`; a DataError when the file has none or several.
  std::size_t column_named(const std::string& name, std::string_view role) const {
    std::vector<std::size_t> found;
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) found.push_back(i + 1);
    if (found.empty())
      records_.fail(
          header_line_, 1,
          fmt::format(fmt::runtime(options_.header ? "no {} column '{}' in the header (columns: {})"
                                                   : "no {} column '{}': without a header, the "
                                                     "columns are named by number ({})"),
                      role, name, fmt::join(names_, ", ")));
    if (found.size() > 1)
      records_.fail(header_line_, 1,
                    fmt::format("the header names {} columns '{}' (columns {}); the {} column "
                                "must be named once",
                                found.size(), name, fmt::join(found, ", "), role));
    return found.front() - 1;
  }

  void assign_roles() {
    roles_.assign(names_.size(), Role::Feature);
    for (const std::string& name : options_.ignored_columns)
      roles_[column_named(name, "ignored")] = Role::Dropped;
    if (!options_.label_column.empty())
      roles_[column_named(options_.label_column, "label")] = Role::Label;
    slots_.assign(names_.size(), 0);
    if (options_.feature_columns.empty()) {
      for (std::size_t i = 0; i < names_.size(); ++i)
        if (roles_[i] == Role::Feature) {
          slots_[i] = feature_names_.size();
          feature_names_.push_back(names_[i]);
        }
    } else {
      for (Role& role : roles_)
        if (role == Role::Feature) role = Role::Dropped;
      for (const std::string& name : options_.feature_columns) {
        const std::size_t column = column_named(name, "feature");
        roles_[column] = Role::Feature;
        slots_[column] = feature_names_.size();
        feature_names_.push_back(name);
      }
    }
    missing_.assign(feature_names_.size(), 0);
    categorical_.assign(feature_names_.size(), false);
    for (const std::string& name : options_.categorical_columns)
      categorical_[slots_[column_named(name, "categorical")]] = true;
    codes_.resize(feature_names_.size());
  }

  void check_width(const std::vector<Field>& fields) const {
    if (fields.size() == names_.size()) return;
    const bool more = fields.size() > names_.size();
    records_.fail(more ? fields[names_.size()].line : records_.last_line(),
                  more ? fields[names_.size()].column : records_.end_column(),
                  fmt::format("ragged row: {} cells, but the {} has {} columns", fields.size(),
                              options_.header ? "header" : "first row", names_.size()));
  }

  void store(const std::vector<Field>& fields) {
    check_width(fields);
    const std::size_t width = feature_names_.size();
    features_.resize(features_.size() + width);
    float* row = features_.data() + features_.size() - width;
    for (std::size_t column = 0; column < fields.size(); ++column) {
      if (roles_[column] == Role::Feature)
        row[slots_[column]] = feature(fields[column], column);
      else if (roles_[column] == Role::Label)
        store_label(fields[column], column);
    }
    ++rows_;
  }

  float feature(const Field& field, std::size_t column) {
    const std::string_view text = records_.text(field);
    if (categorical_[slots_[column]]) return category(field, column);
    double value = std::numeric_limits<double>::quiet_NaN();
    if (!text.empty() && !parse_number(text, value))
      records_.fail(field.line, field.column,
                    fmt::format("cell '{}' in column '{}' is not a number", text, names_[column]));
    if (std::isnan(value)) ++missing_[slots_[column]];
    return static_cast<float>(value);
  }

  // A categorical cell: for now the index of its name's first appearance (finish()
  // turns it into the index among the sorted names); NaN when empty.
  float category(const Field& field, std::size_t column) {
    const std::string_view text = records_.text(field);
    const std::size_t slot = slots_[column];
    if (text.empty()) {
      ++missing_[slot];
      return std::numeric_limits<float>::quiet_NaN();
    }
    auto& codes = codes_[slot];
    const auto [it, added] = codes.try_emplace(std::string(text), codes.size());
    if (added && codes.size() > kMaxCategories)
      records_.fail(field.line, field.column,
                    fmt::format("categorical column '{}' has more than {} distinct values; "
                                "is it an identifier (ignore it) or a number (not categorical)?",
                                names_[column], kMaxCategories));
    return static_cast<float>(it->second);
  }

  void store_label(const Field& field, std::size_t column) {
    const std::string_view text = records_.text(field);
    if (text.empty())
      records_.fail(
          field.line, field.column,
          fmt::format("the label in column '{}' is empty (every row needs one)", names_[column]));
    double value = 0;
    if (!parse_number(text, value))
      records_.fail(field.line, field.column,
                    fmt::format("cell '{}' in column '{}' is not a number", text, names_[column]));
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

  // Codes of first appearance become indices among the sorted names.
  void sort_categories(CsvTable& table) {
    const std::size_t width = feature_names_.size();
    for (std::size_t slot = 0; slot < width; ++slot) {
      if (!categorical_[slot]) continue;
      std::vector<std::string> names;
      for (const auto& entry : codes_[slot]) names.push_back(entry.first);  // a sorted map
      std::vector<float> sorted_index(names.size());
      for (std::size_t i = 0; i < names.size(); ++i)
        sorted_index[codes_[slot].at(names[i])] = static_cast<float>(i);
      for (std::size_t at = slot; at < features_.size(); at += width)
        if (!std::isnan(features_[at]))
          features_[at] = sorted_index[static_cast<std::size_t>(features_[at])];
      table.categories[feature_names_[slot]] = std::move(names);
    }
  }

  CsvTable finish() {
    CsvTable table;
    sort_categories(table);
    table.feature_columns = feature_names_;
    table.missing = missing_;
    table.x.name = "x";
    table.x.dtype = DType::F32;
    table.x.shape = {rows_, static_cast<std::int64_t>(feature_names_.size())};
    table.x.bytes = bytes_of(features_);
    if (options_.label_column.empty()) return table;
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

  const fs::path& path_;
  const CsvOptions& options_;
  RecordReader records_;
  std::vector<Field> fields_;
  std::int64_t header_line_ = 0;
  std::vector<std::string> names_;  // every column's name
  std::vector<Role> roles_;         // per column
  std::vector<std::size_t> slots_;  // per feature column: its column of x
  std::vector<std::string> feature_names_;
  std::vector<std::int64_t> missing_;  // per column of x
  std::vector<bool> categorical_;      // per column of x
  // Per column of x that is categorical: each name and the order it first appeared.
  std::vector<std::map<std::string, std::size_t>> codes_;
  std::vector<float> features_;
  std::vector<double> labels_;
  bool labels_integral_ = true;
  std::int64_t rows_ = 0;
};

}  // namespace

CsvTable read_csv(const fs::path& path, const CsvOptions& options) {
  check_options(options);
  return CsvParser(path, options).parse();
}

}  // namespace kiln::data
