// Content ids and the dataset store <registry>/datasets/<id>.h5.
#include <kiln/checked_size.h>
#include <kiln/data/dataset.h>
#include <kiln/error.h>
#include <kiln/log.h>

#include "data/content_hash.h"
#include "data/dataset_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <tuple>

namespace kiln::data {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kIdLength = 64;
constexpr std::size_t kMinPrefixLength = 8;

bool is_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return std::isxdigit(c) != 0; });
}

std::string to_lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The checks every array passes before it is hashed or stored.
void check_array(const Array& array) {
  const auto expected = static_cast<std::uint64_t>(
      checked_bytes(array.shape, static_cast<std::int64_t>(size_of(array.dtype)),
                    fmt::format("array '{}'", array.name)));
  if (array.bytes.size() != expected)
    throw DataError(fmt::format("array '{}' holds {} bytes but shape [{}] of {} needs {}",
                                array.name, array.bytes.size(), fmt::join(array.shape, ", "),
                                name_of(array.dtype), expected));
}

std::vector<const Array*> sorted_by_name(const std::vector<Array>& arrays) {
  std::vector<const Array*> sorted;
  for (const Array& array : arrays) sorted.push_back(&array);
  std::sort(sorted.begin(), sorted.end(),
            [](const Array* a, const Array* b) { return a->name < b->name; });
  for (std::size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->name == sorted[i - 1]->name)
      throw DataError(fmt::format("two arrays are named '{}'", sorted[i]->name));
  return sorted;
}

// What put() needs beyond content_id's checks: names HDF5 takes as plain links,
// at least one axis, and one row count for all arrays.
void check_storable(const std::string& name, const std::vector<Array>& arrays,
                    const std::string& parent) {
  if (name.empty()) throw DataError("a dataset version needs a name");
  if (arrays.empty()) throw DataError(fmt::format("dataset '{}' has no arrays", name));
  if (!parent.empty() && (parent.size() != kIdLength || !is_hex(parent)))
    throw DataError(fmt::format("dataset '{}': parent '{}' is not a dataset id", name, parent));
  for (const Array& array : arrays) {
    if (array.name.empty() || array.name == "." || array.name.find('/') != std::string::npos)
      throw DataError(
          fmt::format("dataset '{}': '{}' is not a valid array name", name, array.name));
    if (array.shape.empty())
      throw DataError(fmt::format("dataset '{}': array '{}' has no axes", name, array.name));
    if (array.rows() != arrays.front().rows())
      throw DataError(fmt::format("dataset '{}': arrays disagree on rows: '{}' has {}, '{}' has {}",
                                  name, arrays.front().name, arrays.front().rows(), array.name,
                                  array.rows()));
  }
}

// Ids of the version files in `directory` (<64 hex digits>.h5), sorted.
std::vector<std::string> stored_ids(const fs::path& directory) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& file = it->path();
    const std::string stem = file.stem().string();
    if (file.extension() == ".h5" && stem.size() == kIdLength && is_hex(stem) &&
        it->is_regular_file(ec))
      ids.push_back(stem);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

bool newer(const DatasetVersion& a, const DatasetVersion& b) {
  return std::tie(a.created, a.id) > std::tie(b.created, b.id);
}

}  // namespace

std::optional<DatasetVersion> detail::stored_version(const fs::path& file, bool report_damage) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  try {
    return read_dataset_info(file);
  } catch (const DataError& error) {
    if (report_damage) log::warn("replacing damaged dataset file: {}", error.what());
    return std::nullopt;
  }
}

nlohmann::json categories_of(const nlohmann::json& source) {
  if (!source.is_object() || !source.contains("categories") || !source["categories"].is_object())
    return nlohmann::json::object();
  return source["categories"];
}

std::string content_id(const std::vector<Array>& arrays, const nlohmann::json& source) {
  detail::ContentHasher hash;
  for (const Array* array : sorted_by_name(arrays)) {
    check_array(*array);
    hash.begin_array(array->name, array->dtype, array->shape);
    hash.update(array->bytes.data(), array->bytes.size());
  }
  return hash.finish(source);
}

DatasetStore::DatasetStore(fs::path registry_root)
    : directory_(fs::absolute(registry_root).lexically_normal() / "datasets") {}

DatasetVersion DatasetStore::put(const std::string& name, const std::vector<Array>& arrays,
                                 const nlohmann::json& source, const std::string& parent) {
  check_storable(name, arrays, parent);
  // The same content stored before: nothing to write.
  if (auto existing =
          detail::stored_version(directory_ / (content_id(arrays, source) + ".h5"), true))
    return *existing;
  DatasetWriter writer(*this, name, source, parent);
  for (const Array* array : sorted_by_name(arrays)) {
    writer.begin_array({array->name, array->dtype, array->shape});
    writer.write(array->bytes.data(), array->bytes.size());
  }
  return writer.finish();
}

std::optional<DatasetVersion> DatasetStore::find(const std::string& id_or_name) const {
  if (id_or_name.size() >= kMinPrefixLength && id_or_name.size() <= kIdLength &&
      is_hex(id_or_name)) {
    const std::string prefix = to_lower(id_or_name);
    std::vector<std::string> matches;
    for (const std::string& id : stored_ids(directory_))
      if (id.starts_with(prefix)) matches.push_back(id);
    if (matches.size() == 1) return read_dataset_info(directory_ / (matches.front() + ".h5"));
    if (matches.size() > 1)
      throw ConfigError(fmt::format("dataset id prefix '{}' is ambiguous: it matches {}",
                                    id_or_name, fmt::join(matches, ", ")));
  }
  std::optional<DatasetVersion> newest;
  for (DatasetVersion& version : list())
    if (version.name == id_or_name && (!newest || newer(version, *newest)))
      newest = std::move(version);
  return newest;
}

std::vector<DatasetVersion> DatasetStore::list() const {
  std::vector<DatasetVersion> versions;
  for (const std::string& id : stored_ids(directory_)) {
    const fs::path file = directory_ / (id + ".h5");
    try {
      versions.push_back(read_dataset_info(file));
    } catch (const DataError& error) {
      // One damaged file must not hide the others from `kiln data ls`.
      log::warn("skipping dataset file: {}", error.what());
    }
  }
  std::sort(versions.begin(), versions.end(),
            [](const DatasetVersion& a, const DatasetVersion& b) { return newer(b, a); });
  return versions;
}

}  // namespace kiln::data
