// Checking and comparing dataset versions: what `kiln data verify` and `kiln data
// diff` print. Both read block by block, so neither needs the data in memory.
#pragma once

#include <kiln/data/dataset.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::data {

struct ArrayVerification {
  std::string name;
  std::string recorded_sha256;  // "" when the file predates per-array hashes
  std::string actual_sha256;
  bool matches() const { return recorded_sha256.empty() || recorded_sha256 == actual_sha256; }
};

struct Verification {
  std::string recorded_id;  // the kiln.id attribute
  std::string actual_id;    // recomputed from the arrays
  std::vector<ArrayVerification> arrays;
  bool ok() const { return recorded_id == actual_id; }
  // "array 'x' does not match its recorded SHA-256 ..." naming every array that
  // differs (or the id alone when the file has no per-array hashes); "" when ok().
  std::string problem() const;
};

// Re-hashes every array of a dataset version's file. DataError when the file
// cannot be read at all (a damaged chunk fails to inflate, which HDF5 reports).
Verification verify_dataset(const std::filesystem::path& file);

// Label counts of an integer array (e.g. /y), label -> rows. DataError naming the
// file if the array is missing or not integer.
std::map<std::int64_t, std::int64_t> label_counts(const std::filesystem::path& file,
                                                  const std::string& array = "y");

// label_counts of `array` when the version has it as one integer per row, else
// empty (unlabelled or regression data).
std::map<std::int64_t, std::int64_t> class_counts(const DatasetVersion& version,
                                                  const std::string& array = "y");
// {"<label>": count, ...}
nlohmann::json label_counts_json(const std::map<std::int64_t, std::int64_t>& counts);

struct ArrayDifference {
  std::string name;
  std::optional<ArrayInfo> a, b;  // nullopt where the version lacks the array
  // When both have the same dtype and shape: rows whose bytes differ, and the
  // first of them (at most 10).
  std::optional<std::int64_t> changed_rows;
  std::vector<std::int64_t> first_changed;
};

struct DatasetDifference {
  DatasetVersion a, b;
  std::vector<ArrayDifference> arrays;  // union of both versions' arrays, by name
  // Label counts of `label_array` in each version (empty where it is missing or
  // not integer).
  std::map<std::int64_t, std::int64_t> labels_a, labels_b;
  // Rows where any array common to both differs; nullopt if the row counts differ.
  std::optional<std::int64_t> changed_rows;
};

DatasetDifference diff_datasets(const DatasetVersion& a, const DatasetVersion& b,
                                const std::string& label_array = "y");

nlohmann::json to_json(const DatasetDifference& difference);

}  // namespace kiln::data
