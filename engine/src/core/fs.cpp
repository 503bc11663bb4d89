#include <kiln/error.h>
#include <kiln/fs.h>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace kiln {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail_io(const fs::path& path, std::string_view action) {
  throw DataError(path.string() + ": cannot " + std::string(action) + ": " + std::strerror(errno));
}

void write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      fail_io(path, "write");
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
}

// Reseeded when the process id changes: a forked child must not draw the same
// names as its parent and siblings.
std::string random_suffix() {
  static thread_local std::mt19937_64 engine;
  static thread_local pid_t seeded_for = 0;
  if (seeded_for != ::getpid()) {
    seeded_for = ::getpid();
    engine.seed(std::random_device{}() ^ (static_cast<std::uint64_t>(seeded_for) << 32));
  }
  std::ostringstream out;
  out << std::hex << engine();
  return out.str();
}

}  // namespace

void fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail_io(dir, "open directory");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0 && errno != EINVAL) fail_io(dir, "fsync directory");
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw DataError(dir.string() + ": cannot create directory: " + ec.message());
  const fs::path temp = dir / ("." + path.filename().string() + ".tmp-" + random_suffix());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail_io(temp, "create");
  try {
    write_all(fd, content, temp);
    if (::fsync(fd) != 0) fail_io(temp, "fsync");
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temp.c_str());
    errno = saved;
    fail_io(path, "rename into place");
  }
  fsync_directory(dir);
}

namespace {

// Creates `path` holding `record` in one step: an unnamed file (O_TMPFILE) gets
// the line, then linkat gives it its name, so a writer killed in between leaves
// nothing, never an empty file (MLflow refuses a metric file without data).
// False when the file exists by then, or where O_TMPFILE or /proc is missing
// (NFS): the caller appends instead.
bool create_with_line(const fs::path& path, std::string_view record) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool linked = false;
  if (::write(fd, record.data(), record.size()) == static_cast<ssize_t>(record.size())) {
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    linked = ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0;
  }
  ::close(fd);
  return linked;
}

}  // namespace

void append_line(const fs::path& path, std::string_view line) {
  std::string record(line);
  if (record.empty() || record.back() != '\n') record.push_back('\n');
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  if (!fs::exists(path, ec) && create_with_line(path, record)) return;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail_io(path, "open for append");
  // One write(2) per line: with O_APPEND the kernel places it whole at the end.
  const ssize_t written = ::write(fd, record.data(), record.size());
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (written < 0) fail_io(path, "append");
  if (static_cast<std::size_t>(written) != record.size()) {
    errno = ENOSPC;
    fail_io(path, "append a whole line");
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path.string() + ": cannot open for reading");
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw DataError(path.string() + ": read error");
  return content.str();
}

fs::path make_unique_directory(const fs::path& parent, std::string_view prefix) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw DataError(parent.string() + ": cannot create directory: " + ec.message());
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path candidate = parent / (std::string(prefix) + random_suffix());
    if (::mkdir(candidate.c_str(), 0755) == 0) return candidate;
    if (errno != EEXIST) fail_io(candidate, "create directory");
  }
  throw DataError(parent.string() + ": cannot create a unique directory");
}

FileLock::FileLock(const fs::path& lock_file) {
  std::error_code ec;
  if (lock_file.has_parent_path()) fs::create_directories(lock_file.parent_path(), ec);
  fd_ = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_io(lock_file, "open lock file");
  // Open-file-description locks: owned by this descriptor, so threads of one
  // process exclude each other too (classic POSIX locks would not).
  struct flock request {};
  request.l_type = F_WRLCK;
  request.l_whence = SEEK_SET;
  while (::fcntl(fd_, F_OFD_SETLKW, &request) != 0) {
    if (errno == EINTR) continue;
    const int saved = errno;
    ::close(fd_);
    errno = saved;
    fail_io(lock_file, "lock");
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the lock
}

ProcessLease::ProcessLease(const fs::path& file) : file_(file) {
  std::error_code ec;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  if (lease_held(file))
    throw StageError(
        fmt::format("{}: held by another process that is still running", file.string()));
  const fs::path temporary = file.string() + fmt::format(".tmp-{}", ::getpid());
  fd_ = ::open(temporary.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_io(temporary, "create lease file");
  struct flock request {};
  request.l_type = F_WRLCK;
  request.l_whence = SEEK_SET;
  if (::fcntl(fd_, F_OFD_SETLK, &request) != 0 || ::rename(temporary.c_str(), file.c_str()) != 0) {
    const int saved = errno;
    ::close(fd_);
    fs::remove(temporary, ec);
    errno = saved;
    fail_io(file, "take lease");
  }
}

ProcessLease::~ProcessLease() {
  if (fd_ < 0) return;
  ::unlink(file_.c_str());
  ::close(fd_);  // closing the only descriptor drops the lock
}

bool lease_held(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  // A lock on a new open file description conflicts with the owner's, in this
  // process too; it is given up at once.
  struct flock request {};
  request.l_type = F_WRLCK;
  request.l_whence = SEEK_SET;
  const bool held = ::fcntl(fd, F_OFD_SETLK, &request) != 0 && (errno == EAGAIN || errno == EACCES);
  ::close(fd);
  return held;
}

}  // namespace kiln
