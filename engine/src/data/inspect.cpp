// verify_dataset, label_counts, diff_datasets: block-by-block passes over the
// arrays of dataset files.
#include <kiln/data/inspect.h>
#include <kiln/data/reader.h>
#include <kiln/error.h>
#include <kiln/hash.h>

#include "data/content_hash.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

namespace kiln::data {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kFirstChangedShown = 10;

std::string recorded_id(const fs::path& file) { return read_dataset_info(file).id; }

}  // namespace

std::string Verification::problem() const {
  if (ok()) return {};
  std::vector<std::string> changed;
  for (const ArrayVerification& array : arrays)
    if (!array.matches())
      changed.push_back(fmt::format(
          "array '{}' does not match its recorded SHA-256 (recorded "
          "{}, now {})",
          array.name, array.recorded_sha256.substr(0, 12), array.actual_sha256.substr(0, 12)));
  const std::string id =
      fmt::format("content id recomputed as {}, recorded as {}", actual_id, recorded_id);
  if (changed.empty()) return id;
  return fmt::format("{}; {}", fmt::join(changed, "; "), id);
}

Verification verify_dataset(const fs::path& file) {
  Verification result;
  result.recorded_id = recorded_id(file);
  const DatasetReader reader(file);
  detail::ContentHasher content;
  for (const ArrayInfo& info : reader.arrays()) {  // already in name order
    content.begin_array(info.name, info.dtype, info.shape);
    Sha256 array_hash;
    for_each_block(reader, info.name,
                   [&](std::int64_t, std::int64_t rows, const std::uint8_t* bytes) {
                     const auto size = static_cast<std::size_t>(rows * reader.row_bytes(info.name));
                     content.update(bytes, size);
                     array_hash.update(bytes, size);
                   });
    result.arrays.push_back(
        {info.name, reader.recorded_sha256(info.name), array_hash.hex_digest()});
  }
  result.actual_id = content.finish(read_dataset_info(file).source);
  return result;
}

std::map<std::int64_t, std::int64_t> class_counts(const DatasetVersion& version,
                                                  const std::string& array) {
  for (const ArrayInfo& info : version.arrays)
    if (info.name == array && is_integer(info.dtype) && info.shape.size() == 1)
      return label_counts(version.file, array);
  return {};
}

nlohmann::json label_counts_json(const std::map<std::int64_t, std::int64_t>& counts) {
  nlohmann::json json = nlohmann::json::object();
  for (const auto& [label, count] : counts) json[std::to_string(label)] = count;
  return json;
}

std::map<std::int64_t, std::int64_t> label_counts(const fs::path& file, const std::string& array) {
  const DatasetReader reader(file);
  const ArrayInfo& info = reader.array(array);
  if (!is_integer(info.dtype) || info.shape.size() != 1)
    throw DataError(fmt::format("{}: array '{}' ({} [{}]) is not one integer label per row",
                                file.string(), array, name_of(info.dtype),
                                fmt::join(info.shape, ", ")));
  std::map<std::int64_t, std::int64_t> counts;
  for_each_block(reader, array, [&](std::int64_t, std::int64_t rows, const std::uint8_t* bytes) {
    for (std::int64_t i = 0; i < rows; ++i) ++counts[element_as_integer(bytes, info.dtype, i)];
  });
  return counts;
}

namespace {

std::optional<ArrayInfo> find_array(const DatasetVersion& version, const std::string& name) {
  for (const ArrayInfo& info : version.arrays)
    if (info.name == name) return info;
  return std::nullopt;
}

// Compares the two arrays row by row in blocks; marks changed rows in `changed`.
void compare_rows(const DatasetReader& a, const DatasetReader& b, ArrayDifference& difference,
                  std::vector<bool>& changed) {
  const std::int64_t row_bytes = a.row_bytes(difference.name);
  std::vector<std::uint8_t> other;
  std::int64_t count = 0;
  for_each_block(a, difference.name,
                 [&](std::int64_t first, std::int64_t rows, const std::uint8_t* bytes) {
                   other.resize(static_cast<std::size_t>(rows * row_bytes));
                   b.read_rows(difference.name, first, rows, other.data());
                   for (std::int64_t row = 0; row < rows; ++row) {
                     if (std::memcmp(bytes + row * row_bytes, other.data() + row * row_bytes,
                                     static_cast<std::size_t>(row_bytes)) == 0)
                       continue;
                     ++count;
                     changed[static_cast<std::size_t>(first + row)] = true;
                     if (difference.first_changed.size() < kFirstChangedShown)
                       difference.first_changed.push_back(first + row);
                   }
                 });
  difference.changed_rows = count;
}

std::vector<std::string> array_names(const DatasetVersion& a, const DatasetVersion& b) {
  std::vector<std::string> names;
  for (const auto* version : {&a, &b})
    for (const ArrayInfo& info : version->arrays) names.push_back(info.name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace

DatasetDifference diff_datasets(const DatasetVersion& a, const DatasetVersion& b,
                                const std::string& label_array) {
  DatasetDifference result{
      a, b, {}, class_counts(a, label_array), class_counts(b, label_array), std::nullopt};
  const bool same_rows = a.rows() == b.rows();
  std::vector<bool> changed(same_rows ? static_cast<std::size_t>(a.rows()) : 0, false);
  const DatasetReader reader_a(a.file), reader_b(b.file);
  for (const std::string& name : array_names(a, b)) {
    ArrayDifference difference{name, find_array(a, name), find_array(b, name), {}, {}};
    if (same_rows && difference.a && difference.b && difference.a->dtype == difference.b->dtype &&
        difference.a->shape == difference.b->shape)
      compare_rows(reader_a, reader_b, difference, changed);
    result.arrays.push_back(std::move(difference));
  }
  if (same_rows) result.changed_rows = std::count(changed.begin(), changed.end(), true);
  return result;
}

namespace {

nlohmann::json info_json(const std::optional<ArrayInfo>& info) {
  if (!info) return nullptr;
  return {{"dtype", name_of(info->dtype)}, {"shape", info->shape}};
}

}  // namespace

nlohmann::json to_json(const DatasetDifference& difference) {
  nlohmann::json arrays = nlohmann::json::array();
  for (const ArrayDifference& array : difference.arrays) {
    nlohmann::json entry = {
        {"name", array.name}, {"a", info_json(array.a)}, {"b", info_json(array.b)}};
    if (array.changed_rows) {
      entry["changed_rows"] = *array.changed_rows;
      entry["first_changed"] = array.first_changed;
    }
    arrays.push_back(std::move(entry));
  }
  return {
      {"a", {{"id", difference.a.id}, {"name", difference.a.name}, {"rows", difference.a.rows()}}},
      {"b", {{"id", difference.b.id}, {"name", difference.b.name}, {"rows", difference.b.rows()}}},
      {"arrays", std::move(arrays)},
      {"labels_a", label_counts_json(difference.labels_a)},
      {"labels_b", label_counts_json(difference.labels_b)},
      {"changed_rows", difference.changed_rows ? nlohmann::json(*difference.changed_rows)
                                               : nlohmann::json(nullptr)}};
}

}  // namespace kiln::data
