// CSV files of numbers: one header row naming the columns, then one row per sample,
// comma-separated, numeric cells only (gzip-compressed files are read as well).
#pragma once

#include <kiln/data/array.h>

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::data {

struct CsvTable {
  std::vector<std::string> feature_columns;  // header names of x's columns, in order
  Array x;                                   // "x": f32 [rows, features]
  // "y": the label column, i32 [rows] when every label is an integer that fits,
  // else f32 [rows]; empty (no name) when no label column was asked for.
  Array y;
};

// Reads `path`; the column named `label_column` becomes y ("" for none). Every
// other column becomes a feature. DataError "<file>:<line>:<column>: ..." for a
// row with more or fewer cells than the header, a cell that is not a number
// (empty ones included), a missing label column (listing the columns), and a file
// with no header.
CsvTable read_csv(const std::filesystem::path& path, const std::string& label_column);

}  // namespace kiln::data
