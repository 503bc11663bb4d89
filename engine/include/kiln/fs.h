// File-system primitives that keep the registry consistent when processes crash
// or run side by side: atomic replacement, fsync, and fcntl open-file-description
// locks (these work between threads, between processes, and over NFS).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace kiln {

// Writes `content` to a temporary file next to `path`, fsyncs it, renames it over
// `path` and fsyncs the directory. A reader sees the old file or the new one, never
// a partial one. Parent directories are created.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Appends whole lines with a single write(2) on an O_APPEND descriptor, so that
// concurrent appenders never interleave inside a line. A new file appears with its
// first line in it (where the file system allows: not on NFS), never empty. A
// symbolic link in the file's place is refused (DataError), never followed.
void append_line(const std::filesystem::path& path, std::string_view line);

// Reads a whole file; throws DataError naming the file when it cannot.
std::string read_file(const std::filesystem::path& path);

void fsync_directory(const std::filesystem::path& dir);

// Creates a fresh, empty, uniquely named directory under `parent`.
std::filesystem::path make_unique_directory(const std::filesystem::path& parent,
                                            std::string_view prefix);

// Exclusive lock on `lock_file` (created if missing), held until destruction.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& lock_file);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Whether a process still lives, across processes and hosts that share the file
// system: the owner holds an exclusive lock on `file` for as long as it runs, and
// the kernel drops it when the process ends, however it ends (kill -9 included).
// The file appears already locked (locked under a temporary name, then renamed),
// so a reader never takes a lease that is being taken for a dead one.
class ProcessLease {
 public:
  // StageError when the file cannot be created, or is held by another process.
  explicit ProcessLease(const std::filesystem::path& file);
  ~ProcessLease();  // removes the file, then lets go
  ProcessLease(const ProcessLease&) = delete;
  ProcessLease& operator=(const ProcessLease&) = delete;

 private:
  std::filesystem::path file_;
  int fd_ = -1;
};

// True while some process holds the lease on `file`; false when none does or the
// file does not exist.
bool lease_held(const std::filesystem::path& file);

}  // namespace kiln
