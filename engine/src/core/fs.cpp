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

// Writes all of `data`; 0, or the errno of the write that failed. A short write
// is continued: the kernel reports why (ENOSPC, EFBIG) only on the next one.
int write_fully(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return 0;
}

void write_all(int fd, std::string_view data, const fs::path& path) {
  if (const int error = write_fully(fd, data); error != 0) {
    errno = error;
    fail_io(path, "write");
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

[[noreturn]] void fail_append(const fs::path& path, int error) {
  throw DataError(fmt::format("{}: cannot append a line: {} (the file is left as it was)",
                              path.string(), std::strerror(error)));
}

// Creates `path` holding `record` in one step: an unnamed file (O_TMPFILE) gets
// the line, then linkat gives it its name, so a writer killed in between leaves
// nothing, never an empty file (MLflow refuses a metric file without data).
// False when the file exists by then, or where O_TMPFILE or /proc is missing
// (NFS): the caller appends instead. A write that fails (a full disk)
// throws: the unnamed file vanishes, and appending would leave an empty file.
bool create_with_line(const fs::path& path, std::string_view record) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == ENOSPC || errno == EDQUOT) fail_append(path, errno);
    return false;
  }
  if (const int error = write_fully(fd, record); error != 0) {
    ::close(fd);
    fail_append(path, error);
  }
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  const bool linked =
      ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0;
  ::close(fd);
  return linked;
}

// Holds an exclusive lock on the whole of an open file (an open-file-description
// lock) while it lives. Appenders take it so that one that fails can cut the file
// back to where its line began without cutting another's line.
class AppendLock {
 public:
  AppendLock(int fd, const fs::path& path) : fd_(fd) {
    struct flock request {};
    request.l_type = F_WRLCK;
    request.l_whence = SEEK_SET;
    while (::fcntl(fd_, F_OFD_SETLKW, &request) != 0) {
      if (errno != EINTR) fail_io(path, "lock for append");
    }
  }
  ~AppendLock() {
    struct flock request {};
    request.l_type = F_UNLCK;
    request.l_whence = SEEK_SET;
    ::fcntl(fd_, F_OFD_SETLK, &request);
  }
  AppendLock(const AppendLock&) = delete;
  AppendLock& operator=(const AppendLock&) = delete;

 private:
  int fd_;
};

// Appends `record` whole or not at all. Under the lock the file ends where the
// record will start. The space is reserved first (where the file system can:
// tmpfs, ext4, xfs), so a full disk fails before a byte is visible; a write that
// still fails part way (EFBIG past RLIMIT_FSIZE, EIO) is cut back off, and the
// next line starts clean.
void append_whole(int fd, std::string_view record, const fs::path& path) {
  AppendLock lock(fd, path);
  const off_t start = ::lseek(fd, 0, SEEK_END);
  if (start < 0) fail_io(path, "find the end of");
  const auto length = static_cast<off_t>(record.size());
  if (::fallocate(fd, FALLOC_FL_KEEP_SIZE, start, length) != 0 &&
      (errno == ENOSPC || errno == EDQUOT))
    fail_append(path, errno);
  const int error = write_fully(fd, record);
  if (error == 0) return;
  while (::ftruncate(fd, start) != 0 && errno == EINTR) {
  }
  fail_append(path, error);
}

}  // namespace

void append_line(const fs::path& path, std::string_view line) {
  std::string record(line);
  if (record.empty() || record.back() != '\n') record.push_back('\n');
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  if (!fs::exists(path, ec) && create_with_line(path, record)) return;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ELOOP)
    throw DataError(path.string() + ": is a symbolic link; kiln appends through no link");
  if (fd < 0) fail_io(path, "open for append");
  try {
    append_whole(fd, record, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
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
