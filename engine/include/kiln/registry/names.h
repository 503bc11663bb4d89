// Checks for every name that the registry turns into a path or writes into MLflow's
// file store. Each check throws kiln::ConfigError "registry: <field> '<value>': <why>"
// and is run before anything is written. The rules are MLflow's own (mlflow/utils/
// validation.py), narrowed where MLflow's would let a name escape its directory or
// be unreadable on another OS.
#pragma once

#include <cstddef>
#include <string_view>

namespace kiln::registry {

// MLflow's length limits (validation.py): keys, param values, tag values.
inline constexpr std::size_t kMaxKeyLength = 250;
inline constexpr std::size_t kMaxParamValueLength = 6000;
inline constexpr std::size_t kMaxTagValueLength = 8000;
inline constexpr std::size_t kMaxExperimentNameLength = 500;
inline constexpr std::size_t kMaxAliasLength = 255;

// Not empty, at most 500 characters, UTF-8, no control characters, and no path
// component that could escape (leading '/', empty, '.' or '..' components).
void validate_experiment_name(std::string_view name);

// A registered model name is one directory: no '/', '\\', ':' or '%', not '.',
// not starting with '..', UTF-8, no control characters, and no spaces (stricter
// than MLflow, which allows them: a kiln model name is one word on a command line).
void validate_model_name(std::string_view name);

// Aliases: [A-Za-z0-9_-]+, at most 255, not "latest" nor "v<digits>" (both reserved
// by MLflow for version lookup).
void validate_alias(std::string_view alias);

// Metric, param and tag keys: [A-Za-z0-9_.- /]+ (the set MLflow accepts on every
// OS), at most 250, and '/'-separated components that are neither empty, '.' nor
// '..', not starting with '..'. `field` names the kind in the message ("metric key").
void validate_key(std::string_view field, std::string_view key);

// Values written into files that MLflow reads as UTF-8 text: valid UTF-8, no NUL,
// at most `max_length` bytes.
void validate_value(std::string_view field, std::string_view key, std::string_view value,
                    std::size_t max_length);

// Ids that arrive from outside (CLI arguments, other tools) before they become paths:
// MLflow's patterns [A-Za-z0-9][A-Za-z0-9_-]{0,63} and {0,255}.
void validate_experiment_id(std::string_view id);
void validate_run_id(std::string_view id);

}  // namespace kiln::registry
