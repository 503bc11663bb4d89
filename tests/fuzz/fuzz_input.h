// Shared by the fuzz targets: the input bytes as a file, for kiln's readers that
// take a path. Each process writes to its own scratch directory (libFuzzer's
// -jobs and -fork run several processes at once), removed when the process exits
// normally.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

namespace kiln::fuzz {

class ScratchDir {
 public:
  ScratchDir()
      : path_(std::filesystem::temp_directory_path() /
              ("kiln-fuzz-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

inline const std::filesystem::path& scratch_dir() {
  static const ScratchDir dir;
  return dir.path();
}

// Writes `bytes` to <scratch>/<name> (replacing it) and returns that path. No
// fsync: the file is read back at once by the same process.
inline std::filesystem::path write_input(const void* bytes, std::size_t size,
                                         const std::string& name) {
  const std::filesystem::path file = scratch_dir() / name;
  std::FILE* out = std::fopen(file.c_str(), "wb");
  if (out == nullptr) __builtin_trap();  // the harness itself is broken, not kiln
  if (size != 0 && std::fwrite(bytes, 1, size, out) != size) __builtin_trap();
  if (std::fclose(out) != 0) __builtin_trap();
  return file;
}

}  // namespace kiln::fuzz
