// Reading a run directory back: its meta.yaml and the tags that RunInfo carries.
#pragma once

#include <kiln/registry/mlflow_store.h>

#include "registry/meta_yaml.h"

#include <filesystem>

namespace kiln::registry::detail {

// Throws DataError naming the file when meta.yaml is missing or malformed.
RunMeta read_run_meta(const std::filesystem::path& run_dir);
RunInfo to_run_info(const RunMeta& meta, const std::filesystem::path& run_dir);

}  // namespace kiln::registry::detail
