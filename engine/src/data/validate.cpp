// validate_dataset: one pass per array for ranges and NaN/Inf, one over the
// feature rows (with their labels) for duplicates, one over the other version's
// feature rows for overlap. Memory: the row-hash tables, about 50 bytes a row.
#include <kiln/data/inspect.h>
#include <kiln/data/reader.h>
#include <kiln/data/validate.h>
#include <kiln/error.h>

#include "data/row_hash.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <limits>
#include <unordered_map>
#include <unordered_set>

namespace kiln::data {
namespace fs = std::filesystem;
using detail::RowHash;
using detail::RowHashHasher;

namespace {

struct ArrayStats {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  std::int64_t nan = 0, inf = 0, first_bad_row = -1;
  std::int64_t outside = 0, first_outside_row = -1;
};

class Validator {
 public:
  Validator(const fs::path& file, const ValidationOptions& options)
      : reader_(file), options_(options) {}

  ValidationReport run() {
    for (const ArrayInfo& info : reader_.arrays())
      if (!info.shape.empty()) report_.stats["rows"] = info.shape.front();
    check_schema();
    for (const ArrayInfo& info : reader_.arrays()) check_values(info);
    if (has(options_.labels)) check_labels();
    if (has(options_.features)) check_duplicates();
    if (options_.overlap_with && has(options_.features)) check_overlap(*options_.overlap_with);
    return std::move(report_);
  }

 private:
  bool has(const std::string& name) const {
    if (name.empty()) return false;
    for (const ArrayInfo& info : reader_.arrays())
      if (info.name == name) return true;
    return false;
  }

  void add(std::string check, bool passed, std::string message) {
    report_.findings.push_back({std::move(check), passed, std::move(message)});
  }

  void check_schema() {
    for (const ArraySchema& expected : options_.schema) {
      if (!has(expected.name)) {
        add("schema", false, fmt::format("no array '{}'", expected.name));
        continue;
      }
      const ArrayInfo& info = reader_.array(expected.name);
      bool shape_ok = expected.shape.empty() || expected.shape.size() == info.shape.size();
      for (std::size_t axis = 0; shape_ok && axis < expected.shape.size(); ++axis)
        shape_ok = expected.shape[axis] < 0 || expected.shape[axis] == info.shape[axis];
      const bool dtype_ok = !expected.dtype || *expected.dtype == info.dtype;
      add("schema", shape_ok && dtype_ok,
          fmt::format("array '{}' is {} [{}]{}", expected.name, name_of(info.dtype),
                      fmt::join(info.shape, ", "),
                      shape_ok && dtype_ok
                          ? ""
                          : fmt::format(", expected {} [{}] (-1: any)",
                                        expected.dtype ? name_of(*expected.dtype) : "any dtype",
                                        fmt::join(expected.shape, ", "))));
    }
  }

  const ValueRange* range_of(const std::string& name) const {
    for (const ValueRange& range : options_.ranges)
      if (range.array == name) return &range;
    return nullptr;
  }

  static void scan(ArrayStats& stats, const ValueRange* range, double value, std::int64_t row) {
    if (std::isnan(value) || std::isinf(value)) {
      ++(std::isnan(value) ? stats.nan : stats.inf);
      if (stats.first_bad_row < 0) stats.first_bad_row = row;
      return;
    }
    stats.min = std::min(stats.min, value);
    stats.max = std::max(stats.max, value);
    if (range != nullptr && (value < range->min || value > range->max)) {
      ++stats.outside;
      if (stats.first_outside_row < 0) stats.first_outside_row = row;
    }
  }

  void check_values(const ArrayInfo& info) {
    ArrayStats stats;
    const ValueRange* range = range_of(info.name);
    const std::int64_t row_elements = reader_.row_bytes(info.name) / size_of(info.dtype);
    for_each_block(
        reader_, info.name, [&](std::int64_t first, std::int64_t rows, const std::uint8_t* bytes) {
          for (std::int64_t i = 0; i < rows * row_elements; ++i)
            scan(stats, range, element_as_double(bytes, info.dtype, i), first + i / row_elements);
        });
    report_.stats["arrays"][info.name] = {{"dtype", name_of(info.dtype)},
                                          {"shape", info.shape},
                                          {"min", stats.min},
                                          {"max", stats.max},
                                          {"nan", stats.nan},
                                          {"inf", stats.inf}};
    if (is_floating(info.dtype) && !options_.allow_nan)
      add("nan", stats.nan + stats.inf == 0,
          fmt::format(
              "array '{}' holds {} NaN and {} Inf values{}", info.name, stats.nan, stats.inf,
              stats.first_bad_row >= 0 ? fmt::format(" (first in row {})", stats.first_bad_row)
                                       : ""));
    if (range != nullptr)
      add("range", stats.outside == 0,
          fmt::format("array '{}' has values in [{}, {}]; allowed [{}, {}]{}", info.name, stats.min,
                      stats.max, range->min, range->max,
                      stats.outside > 0 ? fmt::format(": {} outside, first in row {}",
                                                      stats.outside, stats.first_outside_row)
                                        : ""));
  }

  void check_labels() {
    const ArrayInfo& info = reader_.array(options_.labels);
    if (!is_integer(info.dtype) || info.shape.size() != 1) {
      add("labels", options_.classes.empty() && options_.min_class_fraction <= 0,
          fmt::format("array '{}' is not integer labels; class checks skipped", info.name));
      return;
    }
    const auto counts = label_counts(reader_.file(), options_.labels);
    const double rows = std::max<double>(static_cast<double>(info.shape.front()), 1);
    report_.stats["labels"] = {{"counts", label_counts_json(counts)}, {"classes", counts.size()}};
    std::vector<std::int64_t> unexpected, missing;
    if (!options_.classes.empty()) {
      for (const auto& [label, count] : counts)
        if (std::find(options_.classes.begin(), options_.classes.end(), label) ==
            options_.classes.end())
          unexpected.push_back(label);
      for (const std::int64_t label : options_.classes)
        if (!counts.contains(label)) missing.push_back(label);
      add("labels", unexpected.empty() && missing.empty(),
          fmt::format("{} classes; unexpected labels [{}], missing classes [{}]", counts.size(),
                      fmt::join(unexpected, ", "), fmt::join(missing, ", ")));
    }
    check_balance(counts, rows);
  }

  void check_balance(const std::map<std::int64_t, std::int64_t>& counts, double rows) {
    std::int64_t smallest_label = 0;
    double smallest = counts.empty() ? 0 : 1;
    for (const std::int64_t label : options_.classes)
      if (!counts.contains(label)) smallest = 0, smallest_label = label;
    for (const auto& [label, count] : counts)
      if (count / rows < smallest) smallest = count / rows, smallest_label = label;
    report_.stats["labels"]["min_class_fraction"] = smallest;
    if (options_.min_class_fraction > 0)
      add("balance", smallest >= options_.min_class_fraction,
          fmt::format("smallest class {} has {:.4g} of the rows; required at least {:.4g}",
                      smallest_label, smallest, options_.min_class_fraction));
  }

  // Calls visit(hash of features row, hash of label row) for every row.
  void for_each_row(const DatasetReader& reader, bool with_labels,
                    const std::function<void(const RowHash&, std::uint64_t)>& visit) const {
    const std::int64_t row_bytes = reader.row_bytes(options_.features);
    const std::int64_t label_bytes = with_labels ? reader.row_bytes(options_.labels) : 0;
    std::vector<std::uint8_t> labels;
    for_each_block(
        reader, options_.features,
        [&](std::int64_t first, std::int64_t rows, const std::uint8_t* bytes) {
          labels.resize(static_cast<std::size_t>(rows * label_bytes));
          if (with_labels) reader.read_rows(options_.labels, first, rows, labels.data());
          for (std::int64_t row = 0; row < rows; ++row)
            visit(detail::hash_row(bytes + row * row_bytes, static_cast<std::size_t>(row_bytes)),
                  detail::hash_row(labels.data() + row * label_bytes,
                                   static_cast<std::size_t>(label_bytes))
                      .a);
        });
  }

  void check_duplicates() {
    std::unordered_map<RowHash, std::uint64_t, RowHashHasher> seen;
    std::int64_t duplicates = 0, conflicting = 0;
    for_each_row(reader_, has(options_.labels), [&](const RowHash& row, std::uint64_t label) {
      const auto [it, inserted] = seen.emplace(row, label);
      if (!inserted) ++(it->second == label ? duplicates : conflicting);
    });
    const std::int64_t rows = reader_.array(options_.features).shape.front();
    const double fraction = rows > 0 ? static_cast<double>(duplicates) / rows : 0;
    report_.stats["duplicates"] = {
        {"rows", duplicates}, {"conflicting_labels", conflicting}, {"fraction", fraction}};
    add("duplicates", fraction <= options_.max_duplicate_fraction,
        fmt::format("{} duplicate rows ({:.4g} of the rows; allowed {:.4g})", duplicates, fraction,
                    options_.max_duplicate_fraction));
    if (!options_.allow_conflicting_labels)
      add("duplicates", conflicting == 0,
          fmt::format("{} rows repeat the features of an earlier row under another label",
                      conflicting));
  }

  void check_overlap(const fs::path& other_file) {
    const DatasetReader other(other_file);
    const ArrayInfo& mine = reader_.array(options_.features);
    const ArrayInfo& theirs = other.array(options_.features);
    if (mine.dtype != theirs.dtype ||
        reader_.row_bytes(mine.name) != other.row_bytes(theirs.name)) {
      add("overlap", false,
          fmt::format("cannot compare rows of '{}': {} rows of {} bytes here, {} of {} in {}",
                      mine.name, name_of(mine.dtype), reader_.row_bytes(mine.name),
                      name_of(theirs.dtype), other.row_bytes(theirs.name), other_file.string()));
      return;
    }
    std::unordered_set<RowHash, RowHashHasher> rows;
    for_each_row(other, false, [&](const RowHash& row, std::uint64_t) { rows.insert(row); });
    std::int64_t shared = 0;
    for_each_row(reader_, false,
                 [&](const RowHash& row, std::uint64_t) { shared += rows.contains(row) ? 1 : 0; });
    report_.stats["overlap"] = {{"with", other_file.string()}, {"rows", shared}};
    add("overlap", shared <= options_.max_overlap_rows,
        fmt::format("{} rows of '{}' also appear in {} (allowed {})", shared, mine.name,
                    other_file.filename().string(), options_.max_overlap_rows));
  }

  DatasetReader reader_;
  const ValidationOptions& options_;
  ValidationReport report_;
};

}  // namespace

bool ValidationReport::passed() const {
  return std::all_of(findings.begin(), findings.end(),
                     [](const ValidationFinding& finding) { return finding.passed; });
}

std::string ValidationReport::failures() const {
  std::vector<std::string> messages;
  for (const ValidationFinding& finding : findings)
    if (!finding.passed) messages.push_back(fmt::format("{}: {}", finding.check, finding.message));
  return fmt::format("{}", fmt::join(messages, "; "));
}

nlohmann::json ValidationReport::to_json() const {
  nlohmann::json checks = nlohmann::json::array();
  for (const ValidationFinding& finding : findings)
    checks.push_back(
        {{"check", finding.check}, {"passed", finding.passed}, {"message", finding.message}});
  return {{"passed", passed()}, {"stats", stats}, {"checks", checks}};
}

ValidationReport validate_dataset(const fs::path& file, const ValidationOptions& options) {
  ValidationReport report = Validator(file, options).run();
  report.stats["file"] = file.string();
  return report;
}

}  // namespace kiln::data
