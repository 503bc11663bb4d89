// The stage types known to this process, loaded from plugins. Plugins are found
// on the search path: the directory of kiln's standard plugins (next to the kiln
// executable: <prefix>/lib/kiln/plugins), then KILN_PLUGIN_PATH (colon-separated),
// then the `plugins:` list of the pipeline file. Only files named kiln-*.so are
// loaded; nothing is loaded from the working directory implicitly.
#pragma once

#include <kiln/stage.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct PluginInfo {
  std::string name;
  std::string version;
  std::string build_info;
  std::filesystem::path file;
  std::string sha256;  // of the plugin file, recorded in the run's tags
};

class StageCatalog {
 public:
  StageCatalog();
  ~StageCatalog();
  StageCatalog(const StageCatalog&) = delete;
  StageCatalog& operator=(const StageCatalog&) = delete;

  // Loads every kiln-*.so in `dir` (sorted by name). A missing directory is
  // skipped; a plugin that cannot be loaded is a PluginError.
  void load_directory(const std::filesystem::path& dir);
  // Loads one plugin file: checks the ABI version first, then registers its stage
  // types. Loading the same file twice is a no-op.
  void load_file(const std::filesystem::path& file);

  const StageType* find(std::string_view type_name) const;
  // The type, or ConfigError "<origin>: unknown stage type 'x' (did you mean 'y'?
  // known: a, b, c)".
  const StageType& get(std::string_view type_name, std::string_view origin) const;
  const PluginInfo& plugin_of(std::string_view type_name) const;

  std::vector<std::string> type_names() const;  // sorted
  std::vector<const PluginInfo*> plugins() const;

  struct Impl;  // defined in the engine

 private:
  std::unique_ptr<Impl> impl_;
};

// Directory of the standard plugins, found from the path of the running executable
// (../lib/kiln/plugins relative to its bin/ directory), or KILN_BUILTIN_PLUGIN_DIR.
std::filesystem::path builtin_plugin_dir();
// builtin_plugin_dir(), then the entries of KILN_PLUGIN_PATH.
std::vector<std::filesystem::path> default_plugin_path();

}  // namespace kiln
