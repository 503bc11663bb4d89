// A small tmpfs mounted for one test, for running out of disk space for real
// (ENOSPC from the kernel, not a simulation). Mounting needs root: CI runs as
// root on Debian 12; elsewhere a test skips with why_not() (and .ci/run fails on
// such a skip, so CI cannot lose these tests).
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace kiln::test {

class Tmpfs {
 public:
  // Why no tmpfs can be mounted here ("" when one can).
  static std::string why_not() {
    return ::geteuid() == 0 ? "" : "mounting a tmpfs needs root; not root here";
  }

  // Mounts a tmpfs of `megabytes` on `mount_point` (created if missing).
  Tmpfs(const std::filesystem::path& mount_point, int megabytes) : path_(mount_point) {
    std::filesystem::create_directories(path_);
    const std::string options = "size=" + std::to_string(megabytes) + "m";
    if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) != 0)
      throw std::runtime_error("cannot mount a tmpfs on " + path_.string() + ": " +
                               std::strerror(errno));
  }
  ~Tmpfs() { ::umount2(path_.c_str(), MNT_DETACH); }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  // Writes to the file `name` on it until the kernel refuses: the disk is full then.
  void fill(const std::string& name) const {
    std::FILE* out = std::fopen((path_ / name).c_str(), "wb");
    if (out == nullptr) throw std::runtime_error("cannot create " + (path_ / name).string());
    std::setvbuf(out, nullptr, _IONBF, 0);
    const std::string chunk(4096, 'f');
    while (std::fwrite(chunk.data(), 1, chunk.size(), out) == chunk.size()) {
    }
    std::fclose(out);
  }

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace kiln::test
