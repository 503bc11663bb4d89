// kiln plugins list / kiln plugins describe STAGE.
#include "commands.h"

#include <kiln/error.h>

#include <fmt/format.h>

#include <algorithm>

namespace kiln::cli {
namespace {

void list_plugins() {
  const auto catalog = load_default_catalog();
  fmt::print("search path:\n");
  for (const auto& dir : default_plugin_path()) fmt::print("  {}\n", dir.string());
  for (const PluginInfo* plugin : catalog->plugins()) {
    std::vector<std::string> types;
    for (const auto& name : catalog->type_names())
      if (catalog->plugin_of(name).file == plugin->file) types.push_back(name);
    fmt::print("\n{} {}  {}\n  built with {}\n  stages: {}\n", plugin->name, plugin->version,
               plugin->file.string(), plugin->build_info, fmt::join(types, ", "));
  }
  if (catalog->plugins().empty()) fmt::print("\nno plugins found\n");
}

void describe_stage(const std::string& name, const std::string& pipeline) {
  std::unique_ptr<StageCatalog> catalog;
  if (!pipeline.empty())
    catalog = load_pipeline(pipeline, {}).catalog;
  else
    catalog = load_default_catalog();
  const StageType& type = catalog->get(name, "kiln plugins describe");
  const PluginInfo& plugin = catalog->plugin_of(name);
  fmt::print("{}: {}\nplugin: {} {} ({})\n", type.name, type.summary, plugin.name, plugin.version,
             plugin.file.string());
  const auto list = [](const std::vector<std::string>& items) {
    return items.empty() ? std::string("-") : fmt::format("{}", fmt::join(items, ", "));
  };
  fmt::print("consumes: {}\nproduces: {}\nmetrics: {}\n\nparameters:\n", list(type.consumes),
             list(type.produces), list(type.metrics));
  std::size_t width = 4;
  for (const auto& spec : type.params.specs()) width = std::max(width, spec.name.size());
  for (const auto& spec : type.params.specs()) {
    const std::string value =
        spec.default_value ? "default " + spec.default_value->dump() : std::string("required");
    std::string doc = spec.doc;
    if (!spec.choices.empty()) doc += fmt::format(" (one of: {})", fmt::join(spec.choices, ", "));
    fmt::print("  {:<{}}  {:<14}  {:<22}  {}\n", spec.name, width, to_string(spec.type), value,
               doc);
  }
}

}  // namespace

void add_plugins_command(CLI::App& app) {
  CLI::App* plugins = app.add_subcommand("plugins", "List plugins and describe stage types");
  plugins->require_subcommand(1);
  CLI::App* list = plugins->add_subcommand("list", "Plugins on the search path and their stages");
  list->callback([] { list_plugins(); });

  auto name = std::make_shared<std::string>();
  auto pipeline = std::make_shared<std::string>();
  CLI::App* describe = plugins->add_subcommand("describe", "A stage type's parameters");
  describe->add_option("stage", *name, "Stage type name")->required();
  describe->add_option("--pipeline", *pipeline, "Also load the plugins this pipeline names");
  describe->callback([name, pipeline] { describe_stage(*name, *pipeline); });
}

}  // namespace kiln::cli
