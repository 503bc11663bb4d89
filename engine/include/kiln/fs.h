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
// first line in it (where the file system allows: not on NFS), never empty.
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

}  // namespace kiln
