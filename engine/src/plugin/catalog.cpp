#include <kiln/catalog.h>
#include <kiln/error.h>
#include <kiln/hash.h>
#include <kiln/log.h>
#include <kiln/pipeline.h>
#include <kiln/plugin.h>

#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <regex>

namespace kiln {
namespace fs = std::filesystem;

namespace {

struct LibraryCloser {
  void operator()(void* handle) const noexcept { ::dlclose(handle); }
};
using LibraryHandle = std::unique_ptr<void, LibraryCloser>;

struct LoadedPlugin {
  PluginInfo info;
  LibraryHandle library;
};

std::string dl_error() {
  const char* message = ::dlerror();
  return message != nullptr ? message : "unknown dynamic loader error";
}

}  // namespace

struct StageCatalog::Impl {
  // Declared first so it is destroyed last: the stage types' code lives in these
  // libraries and must stay mapped until the types are gone.
  std::vector<std::unique_ptr<LoadedPlugin>> plugins;
  std::map<std::string, StageType, std::less<>> types;
  std::map<std::string, const PluginInfo*, std::less<>> owners;
};

namespace {

class Registrar final : public StageRegistrar {
 public:
  Registrar(StageCatalog::Impl& impl, const PluginInfo& plugin) : impl_(impl), plugin_(plugin) {}

  void add(StageType type) override {
    static const std::regex kName("[a-z][a-z0-9_]*");
    if (!std::regex_match(type.name, kName))
      throw PluginError(fmt::format(
          "plugin '{}' ({}): stage type name '{}' must be lowercase letters, digits and '_'",
          plugin_.name, plugin_.file.string(), type.name));
    if (!type.run)
      throw PluginError(fmt::format("plugin '{}' ({}): stage type '{}' has no run function",
                                    plugin_.name, plugin_.file.string(), type.name));
    if (const auto owner = impl_.owners.find(type.name); owner != impl_.owners.end())
      throw PluginError(fmt::format(
          "stage type '{}' is registered twice: by plugin '{}' ({}) and by plugin '{}' ({})",
          type.name, owner->second->name, owner->second->file.string(), plugin_.name,
          plugin_.file.string()));
    for (const auto& pending : pending_)
      if (pending.name == type.name)
        throw PluginError(fmt::format("plugin '{}' ({}) registers stage type '{}' twice",
                                      plugin_.name, plugin_.file.string(), type.name));
    pending_.push_back(std::move(type));
  }

  // Types enter the catalog only once the whole registration succeeded.
  void commit() {
    for (auto& type : pending_) {
      impl_.owners[type.name] = &plugin_;
      std::string name = type.name;
      impl_.types.emplace(std::move(name), std::move(type));
    }
  }

 private:
  StageCatalog::Impl& impl_;
  const PluginInfo& plugin_;
  std::vector<StageType> pending_;
};

const KilnPluginDescriptor& read_descriptor(void* library, const fs::path& file) {
  ::dlerror();
  void* symbol = ::dlsym(library, KILN_PLUGIN_ENTRY_SYMBOL);
  if (symbol == nullptr)
    throw PluginError(
        fmt::format("plugin {}: missing entry symbol '{}' (define it with KILN_PLUGIN(...) from "
                    "<kiln/plugin.h>)",
                    file.string(), KILN_PLUGIN_ENTRY_SYMBOL));
  const auto entry = reinterpret_cast<KilnPluginEntry>(symbol);
  const KilnPluginDescriptor* descriptor = entry();
  if (descriptor == nullptr)
    throw PluginError(fmt::format("plugin {}: entry '{}' returned no descriptor", file.string(),
                                  KILN_PLUGIN_ENTRY_SYMBOL));
  // Only the first member is trusted before the version matches.
  if (descriptor->abi_version != KILN_ABI_VERSION)
    throw PluginError(
        fmt::format("plugin {} built for ABI {}, engine speaks ABI {}: rebuild it "
                    "against this kiln",
                    file.string(), descriptor->abi_version, KILN_ABI_VERSION));
  if (descriptor->name == nullptr || *descriptor->name == '\0' || descriptor->version == nullptr ||
      descriptor->register_stages == nullptr)
    throw PluginError(
        fmt::format("plugin {}: descriptor lacks a name, version or register "
                    "function",
                    file.string()));
  return *descriptor;
}

}  // namespace

StageCatalog::StageCatalog() : impl_(std::make_unique<Impl>()) {}
StageCatalog::~StageCatalog() {
  impl_->types.clear();  // before the libraries that hold their code
  impl_->owners.clear();
}

void StageCatalog::load_directory(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    log::debug("plugin directory {} does not exist; skipped", dir.string());
    return;
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.starts_with("kiln-") && name.ends_with(".so"))
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) load_file(file);
}

void StageCatalog::load_file(const fs::path& file) {
  std::error_code ec;
  const fs::path canonical = fs::canonical(file, ec);
  if (ec) throw PluginError(fmt::format("plugin {}: {}", file.string(), ec.message()));
  for (const auto& plugin : impl_->plugins)
    if (plugin->info.file == canonical) return;

  LibraryHandle library(::dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!library)
    throw PluginError(fmt::format("plugin {}: cannot load: {}", file.string(), dl_error()));
  const KilnPluginDescriptor& descriptor = read_descriptor(library.get(), canonical);

  auto plugin = std::make_unique<LoadedPlugin>();
  plugin->info = {descriptor.name, descriptor.version,
                  descriptor.build_info != nullptr ? descriptor.build_info : "", canonical,
                  sha256_file(canonical)};
  plugin->library = std::move(library);
  Registrar registrar(*impl_, plugin->info);
  try {
    descriptor.register_stages(registrar);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw PluginError(fmt::format("plugin {}: registration failed: {}", file.string(), e.what()));
  }
  registrar.commit();
  log::debug("loaded plugin {} {} from {}", plugin->info.name, plugin->info.version,
             canonical.string());
  impl_->plugins.push_back(std::move(plugin));
}

const StageType* StageCatalog::find(std::string_view type_name) const {
  const auto it = impl_->types.find(type_name);
  return it == impl_->types.end() ? nullptr : &it->second;
}

const StageType& StageCatalog::get(std::string_view type_name, std::string_view origin) const {
  if (const StageType* type = find(type_name)) return *type;
  const std::vector<std::string> known = type_names();
  const std::string nearest = nearest_name(type_name, known);
  std::string known_list;
  for (const auto& name : known) known_list += (known_list.empty() ? "" : ", ") + name;
  throw ConfigError(
      fmt::format("{}: unknown stage type '{}'{}; known types: {}", origin, type_name,
                  nearest.empty() ? "" : fmt::format(" (did you mean '{}'?)", nearest),
                  known_list.empty() ? "none (no plugins found)" : known_list));
}

const PluginInfo& StageCatalog::plugin_of(std::string_view type_name) const {
  const auto it = impl_->owners.find(type_name);
  if (it == impl_->owners.end())
    throw InternalError(fmt::format("no plugin owns stage type '{}'", type_name));
  return *it->second;
}

std::vector<std::string> StageCatalog::type_names() const {
  std::vector<std::string> names;
  for (const auto& [name, type] : impl_->types) names.push_back(name);
  return names;
}

std::vector<const PluginInfo*> StageCatalog::plugins() const {
  std::vector<const PluginInfo*> infos;
  for (const auto& plugin : impl_->plugins) infos.push_back(&plugin->info);
  return infos;
}

fs::path builtin_plugin_dir() {
  if (const char* dir = std::getenv("KILN_BUILTIN_PLUGIN_DIR")) return dir;
  std::error_code ec;
  const fs::path executable = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return (executable.parent_path().parent_path() / KILN_PLUGIN_RELATIVE_DIR).lexically_normal();
}

std::vector<fs::path> default_plugin_path() {
  std::vector<fs::path> dirs;
  if (fs::path builtin = builtin_plugin_dir(); !builtin.empty()) dirs.push_back(builtin);
  if (const char* path = std::getenv("KILN_PLUGIN_PATH")) {
    std::string_view rest = path;
    while (!rest.empty()) {
      const std::size_t colon = rest.find(':');
      const std::string_view entry = rest.substr(0, colon);
      if (!entry.empty()) dirs.emplace_back(entry);
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  return dirs;
}

}  // namespace kiln
