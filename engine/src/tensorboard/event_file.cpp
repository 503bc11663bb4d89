#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/tensorboard.h>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace kiln::tensorboard {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail_io(const fs::path& path, std::string_view action) {
  throw DataError(path.string() + ": cannot " + std::string(action) + ": " + std::strerror(errno));
}

double wall_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') return "localhost";
  return name.data();
}

// A new file named as TensorBoard expects; two writers starting in the same second
// on one host (ranks, a resumed run) get ".1", ".2", ... appended instead of
// sharing a file.
int create_event_file(const fs::path& directory, fs::path& path) {
  const std::string base = event_file_name(static_cast<std::int64_t>(wall_time_now()), host_name());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    path = directory / (attempt == 0 ? base : base + "." + std::to_string(attempt));
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    if (errno != EEXIST) fail_io(path, "create the TensorBoard event file");
  }
  throw DataError(directory.string() + ": cannot find a free TensorBoard event file name");
}

}  // namespace

EventFileWriter::EventFileWriter(const fs::path& directory) {
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec) throw DataError(directory.string() + ": cannot create directory: " + ec.message());
  fd_ = create_event_file(directory, path_);
  try {
    append(tfrecord(file_version_event(wall_time_now())));
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

EventFileWriter::~EventFileWriter() {
  try {
    close();
  } catch (const Error& error) {
    log::warn("tensorboard: {}", error.what());
  }
}

void EventFileWriter::add_scalar(std::string_view tag, double value, std::int64_t step) {
  if (fd_ < 0) throw InternalError(path_.string() + ": scalar added after close()");
  append(tfrecord(scalar_event(wall_time_now(), step, tag, static_cast<float>(value))));
}

// One write(2) per record, as MLflow metric lines are written: with O_APPEND the
// record lands whole, and a reader polling the file (TensorBoard does) never sees
// half of one unless the disk is full.
void EventFileWriter::append(const std::string& record) {
  ssize_t written = -1;
  do {
    written = ::write(fd_, record.data(), record.size());
  } while (written < 0 && errno == EINTR);
  if (written < 0) fail_io(path_, "append to");
  if (static_cast<std::size_t>(written) != record.size()) {
    errno = ENOSPC;
    fail_io(path_, "append a whole record to");
  }
}

void EventFileWriter::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  const int synced = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (synced != 0 && errno != EINVAL) fail_io(path_, "fsync");
}

}  // namespace kiln::tensorboard
