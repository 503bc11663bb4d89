// The kiln command line: global options and every subcommand, on one CLI11 app.
#include <kiln/log.h>
#include <kiln/version.h>

#include "commands.h"

namespace kiln::cli {
namespace {

// Sets fallthrough on every subcommand below `app`, so that an option of an
// outer command (--registry, -v, --color) is taken after any subcommand.
// CLI11 copies the setting into subcommands made after it is set; this reaches
// those made before as well.
void fall_through_everywhere(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({})) {
    sub->fallthrough();
    fall_through_everywhere(*sub);
  }
}

log::Color color_named(const std::string& name) {
  if (name == "always") return log::Color::Always;
  if (name == "never") return log::Color::Never;
  return log::Color::Auto;
}

}  // namespace

void add_commands(CLI::App& app, GlobalOptions& global) {
  app.require_subcommand(1);
  app.set_version_flag("--version", "kiln " KILN_VERSION);
  app.add_option("--registry", global.registry,
                 "Registry root (runs, models, datasets, step cache)")
      ->envname("KILN_REGISTRY")
      ->capture_default_str();
  app.add_flag("-v,--verbose", global.verbose, "Debug logging");
  app.add_option("--color", global.color,
                 "Colour the log's level names: auto (on a terminal, unless NO_COLOR is set), "
                 "always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  app.parse_complete_callback([&global] {
    if (global.verbose) log::set_level(log::Level::Debug);
    if (!global.color.empty()) log::set_color(color_named(global.color));
  });

  add_run_commands(app, global);
  add_plugins_command(app);
  add_version_command(app);
  add_data_command(app, global);
  add_report_command(app, global);
  add_registry_command(app, global);
  add_sweep_command(app, global);
  add_submit_command(app, global);
  add_jobs_command(app, global);
  add_reproduce_command(app, global);
  add_bench_command(app, global);
  fall_through_everywhere(app);
}

}  // namespace kiln::cli
