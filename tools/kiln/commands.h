// The kiln CLI's subcommands. Each add_* function declares one subcommand on the
// app and sets its callback; errors propagate as kiln::Error to main().
#pragma once

#include <kiln/catalog.h>
#include <kiln/pipeline.h>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace kiln::cli {

struct GlobalOptions {
  std::filesystem::path registry = "kiln-registry";
  bool verbose = false;
  std::string color;  // --color: auto, always or never; empty when not given
};

// The global options and every subcommand (app.cpp).
void add_commands(CLI::App& app, GlobalOptions& global);

// Loads the plugins on the search path (plus the pipeline's own `plugins:`) and
// the pipeline with its overrides, checked against the stage schemas.
struct LoadedPipeline {
  std::unique_ptr<StageCatalog> catalog;
  Pipeline pipeline;
};
LoadedPipeline load_pipeline(const std::filesystem::path& file,
                             const std::vector<std::string>& overrides);
LoadedPipeline load_pipeline(const PipelineSource& source);  // parsed already
std::unique_ptr<StageCatalog> load_default_catalog();
// The plugins on the search path plus those of the pipeline's `plugins:`.
std::unique_ptr<StageCatalog> load_catalog(const PipelineSource& source);

// `stages` and every stage they need, directly or not.
std::set<std::string> upstream_of(const Pipeline& pipeline, const std::vector<std::string>& stages);

void add_run_commands(CLI::App& app, const GlobalOptions& global);
void add_plugins_command(CLI::App& app);
void add_version_command(CLI::App& app);
void add_data_command(CLI::App& app, const GlobalOptions& global);
void add_report_command(CLI::App& app, const GlobalOptions& global);
void add_registry_command(CLI::App& app, const GlobalOptions& global);
void add_sweep_command(CLI::App& app, const GlobalOptions& global);
void add_submit_command(CLI::App& app, const GlobalOptions& global);
void add_jobs_command(CLI::App& app, const GlobalOptions& global);
void add_reproduce_command(CLI::App& app, const GlobalOptions& global);
void add_bench_command(CLI::App& app, const GlobalOptions& global);

}  // namespace kiln::cli
