#include "data/file_identity.h"

#include <sys/stat.h>

#include <ctime>

namespace kiln::data::detail {
namespace {

std::int64_t nanoseconds(const timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

std::optional<FileIdentity> identify(const std::filesystem::path& file) {
  struct stat status {};
  if (::stat(file.c_str(), &status) != 0) return std::nullopt;
  return FileIdentity{status.st_dev, status.st_ino, status.st_size, nanoseconds(status.st_mtim),
                      nanoseconds(status.st_ctim)};
}

std::int64_t now_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return nanoseconds(now);
}

bool settled_before(const FileIdentity& identity, std::int64_t read_started_ns) {
  constexpr std::int64_t kSettledNs = 1'000'000'000;
  return identity.changed_ns <= read_started_ns - kSettledNs;
}

}  // namespace kiln::data::detail
