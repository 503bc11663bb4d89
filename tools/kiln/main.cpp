// kiln: command-line entry point. Exit codes (docs/cli.md): 0 success, 1 internal
// error, 2 configuration or usage error, 3 stage failure, 4 evaluation gate
// failure, 5 plugin error, 130 interrupted.
#include "commands.h"

#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/version.h>

#include <cstdio>
#include <cstdlib>

namespace {

int report(kiln::ErrorKind kind, const char* message) {
  std::fprintf(stderr, "kiln: %s: %s\n", kiln::to_string(kind), message);
  return kiln::exit_code(kind);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln " KILN_VERSION ": automated training pipelines for HPC machines", "kiln"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kiln " KILN_VERSION);
  kiln::cli::GlobalOptions global;
  app.add_option("--registry", global.registry,
                 "Registry root (runs, models, datasets, step cache)")
      ->envname("KILN_REGISTRY")
      ->capture_default_str();
  app.add_flag("-v,--verbose", global.verbose, "Debug logging");
  app.parse_complete_callback([&] {
    if (global.verbose) kiln::log::set_level(kiln::log::Level::Debug);
  });

  kiln::cli::add_run_commands(app, global);
  kiln::cli::add_plugins_command(app);
  kiln::cli::add_version_command(app);
  kiln::cli::add_data_command(app, global);
  kiln::cli::add_report_command(app, global);
  kiln::cli::add_registry_command(app, global);
  kiln::cli::add_sweep_command(app, global);
  kiln::cli::add_submit_command(app, global);
  kiln::cli::add_jobs_command(app, global);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& success) {
    return app.exit(success);
  } catch (const CLI::ParseError& error) {
    return report(kiln::ErrorKind::Config, error.what());
  } catch (const kiln::Error& error) {
    kiln::log::debug("raised at {}", error.raised_at());
    return report(error.kind(), error.what());
  } catch (const std::exception& error) {
    return report(kiln::ErrorKind::Internal, error.what());
  }
  return 0;
}
