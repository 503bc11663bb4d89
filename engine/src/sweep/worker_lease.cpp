#include "sweep/worker_lease.h"

#include <kiln/error.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kiln::sweep {
namespace fs = std::filesystem;

namespace {
fs::path lock_file(const fs::path& dir, const std::string& id) { return dir / (id + ".lock"); }
}  // namespace

WorkerLease::WorkerLease(const fs::path& workers_dir, const std::string& worker_id) {
  std::error_code ec;
  fs::create_directories(workers_dir, ec);
  const fs::path file = lock_file(workers_dir, worker_id);
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw StageError(fmt::format("{}: cannot create: {}", file.string(), std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    throw StageError(fmt::format("{}: worker '{}' is running already", file.string(), worker_id));
  }
}

WorkerLease::~WorkerLease() {
  if (fd_ >= 0) ::close(fd_);  // closing the only descriptor drops the lock
}

bool worker_alive(const fs::path& workers_dir, const std::string& worker_id) {
  const fs::path file = lock_file(workers_dir, worker_id);
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  // A lock taken here on a new open file description conflicts with the worker's,
  // in this process too.
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

}  // namespace kiln::sweep
