// CSV tables of numbers as RFC 4180 writes them (gzip-compressed files are read as
// well): fields split on a delimiter, quoted fields that may hold the delimiter,
// doubled quotes and line breaks, CRLF or LF line ends, an optional header row.
// Each column has a role: a feature (a number, or missing), a categorical feature
// (text naming a category, or missing), the label, or ignored.
#pragma once

#include <kiln/data/array.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln::data {

struct CsvOptions {
  char delimiter = ',';  // neither a quote nor a line break
  // With a header, the first record names the columns; without one, columns are
  // named by their 0-based index ("0", "1", ...).
  bool header = true;
  std::string label_column = "label";  // becomes y; "" for none
  // The columns of x, in this order; empty: every column that is neither the label
  // nor ignored, in the file's order.
  std::vector<std::string> feature_columns;
  std::vector<std::string> ignored_columns;  // dropped unread (may hold text)
  // Features whose cells are category names (any text; an empty cell is missing).
  // In x such a column holds the category's index in CsvTable::categories, which
  // lists the column's distinct names sorted by their bytes, so the codes do not
  // depend on the order of the rows. Train one-hot encodes them (kiln/train/tabular.h).
  std::vector<std::string> categorical_columns;
};

struct CsvTable {
  std::vector<std::string> feature_columns;  // names of x's columns, in order
  // Per feature column, how many of its cells were missing: empty, or NaN.
  std::vector<std::int64_t> missing;
  // Per categorical column, by name: its categories, sorted; x holds indices into it.
  std::map<std::string, std::vector<std::string>> categories;
  Array x;  // "x": f32 [rows, features]; a missing cell is NaN
  // "y": the label column, i32 [rows] when every label is an integer that fits,
  // else f32 [rows]; empty (no name) when no label column was asked for.
  Array y;
};

// Reads `path`. ConfigError for options that contradict themselves (a column both
// a feature and ignored, the label among the features or ignored, a delimiter
// that is a quote or line break, a categorical column that is the label, ignored,
// or not among explicit feature columns). DataError "<file>:<line>:<column>: ..." for a
// record with more or fewer fields than the first, a feature cell that is not a
// number, a label cell that is empty or not a number, a quoted field not closed
// or followed by other text, a named column the file lacks (listing its columns)
// or names twice, a record longer than 1 MiB, and a file with no records.
CsvTable read_csv(const std::filesystem::path& path, const CsvOptions& options = {});

}  // namespace kiln::data
