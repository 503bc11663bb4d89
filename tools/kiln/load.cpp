#include "commands.h"

namespace kiln::cli {

std::unique_ptr<StageCatalog> load_default_catalog() {
  auto catalog = std::make_unique<StageCatalog>();
  for (const auto& dir : default_plugin_path()) catalog->load_directory(dir);
  return catalog;
}

std::unique_ptr<StageCatalog> load_catalog(const PipelineSource& source) {
  auto catalog = load_default_catalog();
  for (const auto& dir : source.plugin_dirs) catalog->load_directory(dir);
  return catalog;
}

LoadedPipeline load_pipeline(const PipelineSource& source) {
  LoadedPipeline loaded{load_catalog(source), {}};
  loaded.pipeline = resolve_pipeline(source, *loaded.catalog);
  return loaded;
}

LoadedPipeline load_pipeline(const std::filesystem::path& file,
                             const std::vector<std::string>& overrides) {
  // The file is checked on its own first, so that a typo in it is reported even
  // when a plugin is missing.
  return load_pipeline(parse_pipeline(file, overrides));
}

}  // namespace kiln::cli
