// Validation of a dataset version before training: schema, value ranges, NaN/Inf,
// label set and class balance, exact duplicate rows, and overlap with another
// version (train/test leakage). One streaming pass over the arrays; the checks
// that fail are collected, not thrown, so that a report lists them all.
#pragma once

#include <kiln/dtype.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln::data {

struct ArraySchema {
  std::string name;
  std::optional<DType> dtype;       // nullopt: any
  std::vector<std::int64_t> shape;  // -1 for "any extent"; empty: any shape
};

struct ValueRange {
  std::string array;
  double min = 0, max = 0;
};

struct ValidationOptions {
  std::vector<ArraySchema> schema;
  std::vector<ValueRange> ranges;
  bool allow_nan = false;  // NaN or +-Inf in a floating-point array fails otherwise
  std::string features = "x";
  std::string labels = "y";              // "" when the data has none
  std::vector<std::int64_t> classes;     // the expected label set; empty: any
  double min_class_fraction = 0;         // every expected (or seen) class at least this share
  double max_duplicate_fraction = 1;     // duplicate rows (same features and label) / rows
  bool allow_conflicting_labels = true;  // the same features under two labels
  // Rows of `features` also present in this other version (e.g. the test set).
  std::optional<std::filesystem::path> overlap_with;
  std::int64_t max_overlap_rows = 0;
};

struct ValidationFinding {
  std::string check;  // "schema", "range", "nan", "labels", "balance", "duplicates", "overlap"
  bool passed = true;
  std::string message;
};

struct ValidationReport {
  nlohmann::json stats = nlohmann::json::object();  // what was measured
  std::vector<ValidationFinding> findings;
  bool passed() const;
  // The failed findings' messages joined by "; ".
  std::string failures() const;
  nlohmann::json to_json() const;
};

// DataError only when the file cannot be read; a missing array named in the
// options is a failed finding.
ValidationReport validate_dataset(const std::filesystem::path& file,
                                  const ValidationOptions& options);

}  // namespace kiln::data
