// What a registry root is: a directory holding any of mlruns/ (runs and models),
// datasets/ (dataset versions) or stages/ (the step cache). kiln creates those in a
// missing or empty directory, and refuses to write into or read from a directory
// that holds something else, so that a mistyped --registry never scatters kiln's
// files among someone else's.
#pragma once

#include <filesystem>

namespace kiln::registry {

enum class RootAccess {
  Read,   // the root must exist and be a registry (kiln registry ls/show/...)
  Write,  // the root may also be missing or empty (kiln run creates it)
};

// ConfigError "registry <root>: ..." when `root` is a file, or a non-empty
// directory with none of mlruns/, datasets/, stages/, or (Read) missing.
void check_registry_root(const std::filesystem::path& root, RootAccess access);

// Containment of what kiln reads back from a registry, whose files other people
// and tools may have made: DataError "<path>: resolves to <target>, outside
// <within>" unless `path`, with every symbolic link resolved, lies inside `within`
// (resolved too, so a registry reached through a link is fine). Links that stay
// inside are followed; links that leave are refused. Returns the resolved path.
std::filesystem::path check_contained(const std::filesystem::path& within,
                                      const std::filesystem::path& path);

}  // namespace kiln::registry
