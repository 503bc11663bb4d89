// Pipeline files: YAML with `stages:` (each `uses:` a stage type, `needs:` other
// stages, `with:` parameters), plus command-line overrides in dotted form
// ("train.with.lr=3e-4"). Loading happens in two steps: parse_pipeline() checks
// the file on its own (syntax, keys, references, cycles) and yields the plugin
// directories it names; resolve_pipeline() then checks every stage against its
// type's parameter schema. Every error names file:line:col (or the override).
#pragma once

#include <kiln/catalog.h>
#include <kiln/params.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

struct StageDecl {
  std::string name;
  std::string uses;
  std::vector<std::string> needs;
  std::string origin;  // "file:line:col" of the stage's key
};

// `on_failure:`: the command `kiln run` runs when the run fails, so that a mail or
// chat hook hears of it (docs/cli.md, "Alerts").
struct FailureCommand {
  std::vector<std::string> argv;  // empty: none; a string in the file runs as /bin/sh -c
  double timeout_s = 60.0;        // `on_failure_timeout_s:`; then the command is killed
  std::string origin;             // "file:line:col" of `on_failure:`
};

struct PipelineYaml;  // the parsed document, private to the engine

// A pipeline file with overrides applied, checked for everything that does not
// need the plugins.
struct PipelineSource {
  std::filesystem::path file;  // as given on the command line
  std::string name;            // `name:`, else the file's stem
  std::string description;
  std::vector<std::filesystem::path> plugin_dirs;  // `plugins:`, absolute
  std::vector<StageDecl> stages;                   // in file order
  FailureCommand on_failure;
  std::shared_ptr<const PipelineYaml> yaml;
};

PipelineSource parse_pipeline(const std::filesystem::path& file,
                              const std::vector<std::string>& overrides = {});

struct PipelineStage {
  std::string name;
  const StageType* type = nullptr;
  const PluginInfo* plugin = nullptr;
  std::vector<std::string> needs;
  Params params;
  std::string origin;
};

struct Pipeline {
  std::filesystem::path file;
  std::string name;
  std::string description;
  std::vector<PipelineStage> stages;  // topological order, ties in file order
  FailureCommand on_failure;
  std::string resolved_yaml;  // the effective pipeline, defaults filled in

  const PipelineStage* find(std::string_view stage_name) const;
  // Every parameter as "<stage>.with.<param>" -> value text (the run's params).
  std::vector<std::pair<std::string, std::string>> flat_params() const;
};

Pipeline resolve_pipeline(const PipelineSource& source, const StageCatalog& catalog);

// The closest candidate to `word` by edit distance, or "" if none is close enough
// to be a plausible typo.
std::string nearest_name(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace kiln
