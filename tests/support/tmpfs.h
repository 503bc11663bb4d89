// A small tmpfs mounted for one test, for running out of disk space for real
// (ENOSPC from the kernel, not a simulation). Mounting needs root: CI runs as
// root on Debian 12; elsewhere a test skips with why_not() (and .ci/run fails on
// such a skip, so CI cannot lose these tests).
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "support/support.h"

namespace kiln::test {

class Tmpfs {
 public:
  // Why no tmpfs can be mounted here ("" when one can).
  static std::string why_not() {
    return ::geteuid() == 0 ? "" : "mounting a tmpfs needs root; not root here";
  }

  // Mounts a tmpfs of `megabytes` on a fresh directory.
  explicit Tmpfs(int megabytes) {
    const std::string options = "size=" + std::to_string(megabytes) + "m";
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, options.c_str()) != 0)
      throw std::runtime_error("cannot mount a tmpfs on " + dir_.path().string() + ": " +
                               std::strerror(errno) + " (the disk-full tests need root)");
  }
  ~Tmpfs() { ::umount2(dir_.path().c_str(), MNT_DETACH); }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  const std::filesystem::path& path() const { return dir_.path(); }
  std::filesystem::path operator/(const std::string& name) const { return dir_ / name; }

 private:
  TempDir dir_;  // removed after the destructor has unmounted it
};

}  // namespace kiln::test
