#include "registry/store_files.h"

#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/registry_root.h>

#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

namespace kiln::registry::detail {
namespace fs = std::filesystem;

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string new_run_id() {
  // std::random_device reads the kernel's generator on every call, so forked
  // processes never repeat each other's ids (a seeded engine copied by fork would).
  std::random_device device;
  std::array<unsigned char, 16> bytes{};
  for (std::size_t i = 0; i < bytes.size(); i += 4) {
    const std::uint32_t word = device();
    std::memcpy(bytes.data() + i, &word, 4);
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string hex;
  for (const unsigned char byte : bytes) hex += fmt::format("{:02x}", byte);
  return hex;
}

std::string current_user() {
  for (const char* variable : {"USER", "LOGNAME"}) {
    const char* value = std::getenv(variable);
    if (value != nullptr && *value != '\0') return value;
  }
  std::array<char, 4096> buffer{};
  struct passwd entry {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(::getuid(), &entry, buffer.data(), buffer.size(), &found) == 0 &&
      found != nullptr && found->pw_name != nullptr)
    return found->pw_name;
  return "unknown";
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  std::array<char, 64> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return std::string(buffer.data(), result.ptr);
}

std::vector<std::string> subdirectories(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec)) names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> files_below(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->symlink_status(type_ec).type() == fs::file_type::regular)
      names.push_back(it->path().lexically_relative(dir).generic_string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool path_exists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

void make_directories(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw DataError(dir.string() + ": cannot create directory: " + ec.message());
}

std::optional<std::string> read_if_exists(const fs::path& within, const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  return read_within(within, path);
}

std::string read_within(const fs::path& within, const fs::path& path) {
  check_contained(within, path);
  return read_file(path);
}

fs::path Staging::new_directory(std::string_view prefix) const {
  return make_unique_directory(dir_, std::string(prefix) + new_run_id().substr(0, 8) + "-");
}

void Staging::publish_file(const fs::path& target, std::string_view content) const {
  const fs::path staged = dir_ / ("file-" + new_run_id());
  write_file_atomic(staged, content);
  make_directories(target.parent_path());
  if (::rename(staged.c_str(), target.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(staged.c_str());
    throw DataError(target.string() + ": cannot move into place: " + reason);
  }
  fsync_directory(target.parent_path());
}

void Staging::publish_directory(const fs::path& built, const fs::path& target) const {
  fsync_directory(built);
  make_directories(target.parent_path());
  std::error_code ec;
  // rename(2) would silently replace an empty directory; callers pick fresh names
  // (a random run id, or a number above every existing one under a lock).
  if (path_exists(target))
    throw InternalError(target.string() + ": already exists; refusing to replace it");
  if (::rename(built.c_str(), target.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    fs::remove_all(built, ec);
    throw DataError(target.string() + ": cannot move into place: " + reason);
  }
  fsync_directory(target.parent_path());
}

void Staging::remove_stale() const {
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24);
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code entry_ec;
    const auto written = it->last_write_time(entry_ec);
    if (!entry_ec && written < cutoff) fs::remove_all(it->path(), entry_ec);
  }
}

}  // namespace kiln::registry::detail

namespace kiln::registry {

std::string file_uri(const std::filesystem::path& absolute_path) {
  std::string uri = "file://";
  for (const char c : absolute_path.lexically_normal().string()) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' ||
                            c == '~' || c == '/';
    if (unreserved)
      uri.push_back(c);
    else
      uri += fmt::format("%{:02X}", static_cast<unsigned char>(c));
  }
  return uri;
}

std::optional<std::filesystem::path> path_of_file_uri(std::string_view uri) {
  constexpr std::string_view scheme = "file://";
  if (!uri.starts_with(scheme)) return std::nullopt;
  std::string path;
  for (std::size_t i = scheme.size(); i < uri.size(); ++i) {
    unsigned value = 0;
    const char* digits = uri.data() + i + 1;
    if (uri[i] == '%' && i + 2 < uri.size() &&
        std::from_chars(digits, digits + 2, value, 16).ptr == digits + 2) {
      path.push_back(static_cast<char>(value));
      i += 2;
    } else {
      path.push_back(uri[i]);
    }
  }
  if (path.empty() || path.front() != '/') return std::nullopt;
  return std::filesystem::path(path);
}

}  // namespace kiln::registry
