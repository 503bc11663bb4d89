// kiln: command-line entry point. Exit codes (docs/cli.md): 0 success, 1 internal
// error, 2 configuration or usage error, 3 stage failure, 4 evaluation gate
// failure, 5 plugin error, 130 interrupted.
#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/version.h>

#include <cstdio>
#include <cstdlib>

#include "commands.h"
#include "wait_policy.h"

namespace {

int report(kiln::ErrorKind kind, const char* message) {
  std::fprintf(stderr, "kiln: %s: %s\n", kiln::to_string(kind), message);
  return kiln::exit_code(kind);
}

// A command that needs a subcommand and got none (a bare `kiln`, `kiln data`) prints
// its usage before the error line.
void print_usage_if_incomplete(const CLI::App& app) {
  const CLI::App* current = &app;
  while (!current->get_subcommands().empty()) current = current->get_subcommands().front();
  if (current->get_require_subcommand_min() > 0) std::fputs(current->help().c_str(), stderr);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln " KILN_VERSION ": automated training pipelines for HPC machines", "kiln"};
  kiln::cli::GlobalOptions global;
  kiln::cli::add_commands(app, global);
  kiln::cli::remember_arguments(argv);

  try {
    kiln::log::configure_from_environment();
    app.parse(argc, argv);
  } catch (const CLI::Success& success) {
    return app.exit(success);
  } catch (const CLI::RuntimeError& error) {
    return error.get_exit_code();  // a command passing on a child's exit code; it spoke
  } catch (const CLI::RequiredError& error) {
    print_usage_if_incomplete(app);
    return report(kiln::ErrorKind::Config, error.what());
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
