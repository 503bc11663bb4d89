// Private to the pipeline area.
#pragma once

#include "yaml_document.h"

#include <kiln/stage.h>

#include <filesystem>

namespace kiln {

// A generic conversion for free-form values (ParamType::Object): YAML 1.2 core
// schema for plain scalars, quoted scalars stay strings.
nlohmann::json yaml_to_json(const PipelineYaml& doc, const YAML::Node& node);

// One parameter value checked against its spec; relative paths are resolved
// against `base` (the pipeline file's directory) and must name an existing file.
nlohmann::json param_from_yaml(const PipelineYaml& doc, const std::string& stage,
                               const ParamSpec& spec, const YAML::Node& node,
                               const std::string& origin, const std::filesystem::path& base);

// The stage's `with:` against its type's schema: unknown names, types, required
// parameters; defaults filled in.
Params params_from_yaml(const PipelineYaml& doc, const StageDecl& stage, const StageType& type,
                        const std::filesystem::path& base);

}  // namespace kiln
