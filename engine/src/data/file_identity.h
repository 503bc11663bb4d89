// A file as the kernel describes it, for what a process remembers about a file
// between opens: the files kiln-hdf5-reader found sound, the resident data sets a
// sweep worker keeps from trial to trial. Internal to engine/src/data.
#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <filesystem>
#include <optional>

namespace kiln::data::detail {

struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t modified_ns = 0, changed_ns = 0;
  auto operator<=>(const FileIdentity&) const = default;
};

// The identity of `file` now (symbolic links followed); nullopt when stat fails.
std::optional<FileIdentity> identify(const std::filesystem::path& file);

// The wall clock, in nanoseconds since the epoch.
std::int64_t now_ns();

// Whether what was read from a file of this identity, from `read_started_ns` on,
// may be remembered: its status last changed a second or more before. A write,
// rename over or re-creation after that sets the status-change time to the moment
// it happened (no call can choose it), so the file can no longer match `identity`,
// even with the inode number reused and the modification time put back; a file
// changed within the clock's resolution of the read could.
bool settled_before(const FileIdentity& identity, std::int64_t read_started_ns);

}  // namespace kiln::data::detail
