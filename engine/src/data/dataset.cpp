// Content ids and the dataset store <registry>/datasets/<id>.h5.
#include <kiln/checked_size.h>
#include <kiln/data/dataset.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>

#include "data/content_hash.h"
#include "data/dataset_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
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

std::string now_iso8601_utc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", text.data(), millis);
}

// HDF5 does not fsync; the rename must not publish a file whose blocks are not
// on disk yet.
void fsync_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int saved = errno;
    if (fd >= 0) ::close(fd);
    throw DataError(fmt::format("{}: cannot fsync: {}", path.string(), std::strerror(saved)));
  }
  ::close(fd);
}

// Removes a scratch directory when it goes out of scope, whatever happened.
class ScratchDirectory {
 public:
  explicit ScratchDirectory(fs::path path) : path_(std::move(path)) {}
  ~ScratchDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

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

// The version already stored at `file`, if any. A file that cannot be read (a disk
// fault, a hand edit) is reported and treated as absent, so that importing the
// same data again repairs it instead of failing forever.
std::optional<DatasetVersion> stored_version(const fs::path& file, bool report_damage) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  try {
    return read_dataset_info(file);
  } catch (const DataError& error) {
    if (report_damage) log::warn("replacing damaged dataset file: {}", error.what());
    return std::nullopt;
  }
}

bool newer(const DatasetVersion& a, const DatasetVersion& b) {
  return std::tie(a.created, a.id) > std::tie(b.created, b.id);
}

}  // namespace

std::string content_id(const std::vector<Array>& arrays) {
  detail::ContentHasher hash;
  for (const Array* array : sorted_by_name(arrays)) {
    check_array(*array);
    hash.begin_array(array->name, array->dtype, array->shape);
    hash.update(array->bytes.data(), array->bytes.size());
  }
  return hash.finish();
}

DatasetStore::DatasetStore(fs::path registry_root)
    : directory_(fs::absolute(registry_root).lexically_normal() / "datasets") {}

DatasetVersion DatasetStore::put(const std::string& name, const std::vector<Array>& arrays,
                                 const nlohmann::json& source, const std::string& parent) {
  check_storable(name, arrays, parent);
  const std::string id = content_id(arrays);
  const fs::path target = directory_ / (id + ".h5");
  if (auto existing = stored_version(target, true)) return *existing;

  DatasetVersion version;
  version.id = id;
  version.name = name;
  version.created = now_iso8601_utc();
  version.parent = parent;
  version.source = source;
  // The file is written inside a hidden scratch directory (list() never looks
  // there) and published by rename, so readers see a whole file or none.
  const ScratchDirectory scratch(make_unique_directory(directory_, ".tmp-"));
  const fs::path temp = scratch.path() / (id + ".h5");
  detail::write_dataset_file(temp, version, arrays);
  fsync_file(temp);
  {
    // Two writers of the same content: the first rename wins and the second
    // returns the first's version, as if it had found it before writing.
    const FileLock lock(directory_ / ".lock");
    if (auto existing = stored_version(target, false)) return *existing;
    if (::rename(temp.c_str(), target.c_str()) != 0)
      throw DataError(
          fmt::format("{}: cannot rename into place: {}", target.string(), std::strerror(errno)));
    fsync_directory(directory_);
  }
  log::debug("dataset {} ({}) written to {}", id, name, target.string());
  return read_dataset_info(target);
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
