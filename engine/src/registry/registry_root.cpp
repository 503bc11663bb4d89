#include <kiln/error.h>
#include <kiln/registry/registry_root.h>

#include <fmt/format.h>

namespace kiln::registry {
namespace fs = std::filesystem;

namespace {

// rdzv/: rendezvous directories of data-parallel jobs (kiln/dist/env.h); jobs/: what
// kiln submit sent to Slurm (kiln/slurm.h); sweeps/: the sweeps' journals.
constexpr const char* kRegistryFolders[] = {"mlruns", "datasets", "stages",
                                            "rdzv",   "jobs",     "sweeps"};

bool has_registry_folder(const fs::path& root) {
  std::error_code ec;
  for (const char* folder : kRegistryFolders)
    if (fs::is_directory(root / folder, ec)) return true;
  return false;
}

}  // namespace

void check_registry_root(const fs::path& root, RootAccess access) {
  std::error_code ec;
  const fs::file_status status = fs::status(root, ec);
  if (status.type() == fs::file_type::not_found) {
    if (access == RootAccess::Write) return;
    throw ConfigError(fmt::format(
        "registry {}: no such directory (set --registry or KILN_REGISTRY)", root.string()));
  }
  if (ec) throw ConfigError(fmt::format("registry {}: {}", root.string(), ec.message()));
  if (status.type() != fs::file_type::directory)
    throw ConfigError(fmt::format("registry {}: not a directory", root.string()));
  if (has_registry_folder(root)) return;
  const bool empty = fs::is_empty(root, ec);
  if (ec) throw ConfigError(fmt::format("registry {}: {}", root.string(), ec.message()));
  if (!empty)
    throw ConfigError(fmt::format(
        "registry {}: not a kiln registry: the directory is not empty and has none of mlruns/, "
        "datasets/, stages/, jobs/; point --registry (or KILN_REGISTRY) at a registry or an empty "
        "directory",
        root.string()));
}

fs::path check_contained(const fs::path& within, const fs::path& path) {
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(fs::absolute(within), ec);
  if (ec) throw DataError(fmt::format("{}: cannot resolve: {}", within.string(), ec.message()));
  const fs::path target = fs::weakly_canonical(fs::absolute(path), ec);
  if (ec) throw DataError(fmt::format("{}: cannot resolve: {}", path.string(), ec.message()));
  const fs::path relative = target.lexically_relative(root);
  if (relative.empty() || *relative.begin() == "..")
    throw DataError(
        fmt::format("{}: resolves to {}, outside {}; kiln follows no link out of the "
                    "registry",
                    path.string(), target.string(), root.string()));
  return target;
}

}  // namespace kiln::registry
