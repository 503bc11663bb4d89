// File-level helpers of the MLflow store: names of the fixed files, staging (build
// a file or directory out of MLflow's sight, then rename it into place), and the
// small formats (ids, times, URIs, metric lines).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::registry::detail {

inline constexpr const char* kMetaFile = "meta.yaml";
inline constexpr const char* kTrashDir = ".trash";
inline constexpr const char* kModelsDir = "models";
inline constexpr const char* kDefaultExperimentId = "0";
inline constexpr const char* kDefaultExperimentName = "Default";
// Lock files sit directly in mlruns/: MLflow lists only directories there.
inline constexpr const char* kExperimentsLock = ".kiln-experiments.lock";
inline constexpr const char* kModelsLock = ".kiln-models.lock";
// Beside the run's meta.yaml; MLflow only opens the run's files by name.
inline constexpr const char* kRunLock = ".kiln-run.lock";
// kiln's record of alias moves, a plain file in models/<name>/: MLflow reads only
// meta.yaml, tags/, aliases/ and version-*/ directories there.
inline constexpr const char* kAliasHistoryFile = ".kiln-alias-history";

std::int64_t now_ms();
// 32 lowercase hex digits of a random UUID v4, as MLflow's uuid.uuid4().hex.
std::string new_run_id();
// $USER, else $LOGNAME, else the passwd entry, else "unknown" (MLflow's fallback).
std::string current_user();
// Shortest text that Python's float() reads back to the same double; nan/inf/-inf.
std::string format_metric_value(double value);

// Names of the subdirectories of `dir` (none if it does not exist), sorted.
std::vector<std::string> subdirectories(const std::filesystem::path& dir);
// Relative paths ('/'-separated) of the regular files below `dir`, sorted; symbolic
// links are left out (kiln does not follow them inside the registry).
std::vector<std::string> files_below(const std::filesystem::path& dir);
// std::filesystem::exists without exceptions (an unreadable path counts as absent).
bool path_exists(const std::filesystem::path& path);
// create_directories that throws DataError naming the directory.
void make_directories(const std::filesystem::path& dir);
// The file's text, or nothing if it does not exist. Both refuse (DataError) a path
// that resolves outside `within`, the directory kiln trusts it to lie in
// (check_contained in kiln/registry/registry_root.h).
std::optional<std::string> read_if_exists(const std::filesystem::path& within,
                                          const std::filesystem::path& path);
std::string read_within(const std::filesystem::path& within, const std::filesystem::path& path);

// Staging lives in <registry>/.mlruns-staging: beside mlruns (so renames stay on one
// file system) but outside it, because MLflow takes every directory in mlruns/ for an
// experiment, every file under params/, tags/ or aliases/ for an entry, and every
// directory in models/ for a model.
class Staging {
 public:
  explicit Staging(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // A new empty directory to build in; publish it with publish_directory().
  std::filesystem::path new_directory(std::string_view prefix) const;
  // Writes `content` durably and renames it to `target` (replacing it).
  void publish_file(const std::filesystem::path& target, std::string_view content) const;
  // Renames a directory built by new_directory() to `target`, which must not exist.
  void publish_directory(const std::filesystem::path& built,
                         const std::filesystem::path& target) const;
  // Removes what crashed writers left, older than a day.
  void remove_stale() const;

 private:
  std::filesystem::path dir_;
};

}  // namespace kiln::registry::detail
