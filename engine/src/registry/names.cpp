#include <kiln/error.h>
#include <kiln/registry/names.h>

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "core/utf8.h"

namespace kiln::registry {
namespace {

// The value as it can be shown in one line of an error message.
std::string printable(std::string_view value) {
  std::string out;
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f)
      out += fmt::format("\\x{:02x}", byte);
    else
      out.push_back(c);
  }
  return out;
}

[[noreturn]] void reject(std::string_view field, std::string_view value, std::string_view why) {
  throw ConfigError(fmt::format("registry: {} '{}': {}", field, printable(value), why));
}

bool has_control_character(std::string_view value) {
  return std::any_of(value.begin(), value.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

// MLflow's path_not_unique(): a name must be its own posixpath.normpath() and must
// not start with '..' or '/'. That is the same as: every '/'-separated component is
// neither empty, '.' nor '..', and the whole does not start with '..'.
bool escapes_as_path(std::string_view name) {
  if (name.starts_with("..")) return true;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = name.find('/', start);
    const std::string_view part = name.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") return true;
    if (slash == std::string_view::npos) return false;
    start = slash + 1;
  }
}

// ASCII only, whatever the process locale says.
bool is_ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_key_character(char c) {
  return is_ascii_alnum(c) || c == '_' || c == '-' || c == '.' || c == ' ' || c == '/';
}

void check_common(std::string_view field, std::string_view name, std::size_t max_length) {
  if (name.empty()) reject(field, name, "must not be empty");
  if (name.size() > max_length)
    reject(field, name, fmt::format("is {} characters long, at most {}", name.size(), max_length));
  if (has_control_character(name))
    reject(field, name, "must not contain NUL or other control characters");
  if (!is_valid_utf8(name)) reject(field, name, "must be valid UTF-8");
}

}  // namespace

void validate_experiment_name(std::string_view name) {
  constexpr std::string_view field = "experiment name";
  check_common(field, name, kMaxExperimentNameLength);
  if (escapes_as_path(name))
    reject(field, name, "must not start with '/' or '..' nor contain empty, '.' or '..' parts");
}

void validate_model_name(std::string_view name) {
  constexpr std::string_view field = "model name";
  check_common(field, name, kMaxKeyLength);
  if (name.find_first_of("/\\") != std::string_view::npos || name.starts_with("..") || name == ".")
    reject(field, name, "must not contain '/' or '\\' nor be '.' or start with '..'");
  if (name.find_first_of(":%") != std::string_view::npos)
    reject(field, name, "must not contain ':' or '%' (MLflow reserves them)");
  // MLflow accepts spaces in model names; kiln does not: a model name is one word on a
  // command line (`kiln registry show NAME@champion`) and in a shell script.
  if (name.find(' ') != std::string_view::npos) reject(field, name, "must not contain spaces");
}

void validate_alias(std::string_view alias) {
  constexpr std::string_view field = "alias";
  check_common(field, alias, kMaxAliasLength);
  const bool word = std::all_of(alias.begin(), alias.end(),
                                [](char c) { return is_ascii_alnum(c) || c == '_' || c == '-'; });
  if (!word) reject(field, alias, "may only contain letters, digits, '_' and '-' (no '/' or '..')");
  const bool latest =
      alias.size() == 6 && std::equal(alias.begin(), alias.end(), "latest",
                                      [](char a, char b) { return (a | 0x20) == b; });
  if (latest) reject(field, alias, "'latest' is reserved by MLflow");
  const bool version_like =
      alias.size() > 1 && (alias[0] == 'v' || alias[0] == 'V') &&
      std::all_of(alias.begin() + 1, alias.end(), [](char c) { return (c >= '0' && c <= '9'); });
  if (version_like) reject(field, alias, "'v<number>' is reserved by MLflow for versions");
}

void validate_key(std::string_view field, std::string_view key) {
  check_common(field, key, kMaxKeyLength);
  if (!std::all_of(key.begin(), key.end(), is_key_character))
    reject(field, key,
           "may only contain letters, digits, '_', '-', '.', ' ' and '/' (MLflow's portable set)");
  if (escapes_as_path(key))
    reject(field, key, "must not start with '/' or '..' nor contain empty, '.' or '..' parts");
}

void validate_value(std::string_view field, std::string_view key, std::string_view value,
                    std::size_t max_length) {
  const std::string what = fmt::format("{} '{}'", field, printable(key));
  if (value.size() > max_length)
    throw ConfigError(fmt::format("registry: {}: value is {} bytes long, MLflow allows at most {}",
                                  what, value.size(), max_length));
  if (value.find('\0') != std::string_view::npos)
    throw ConfigError(fmt::format("registry: {}: value must not contain NUL", what));
  if (!is_valid_utf8(value))
    throw ConfigError(fmt::format("registry: {}: value must be valid UTF-8", what));
}

namespace {

void validate_id(std::string_view field, std::string_view id, std::size_t max_length) {
  const bool well_formed = !id.empty() && id.size() <= max_length && is_ascii_alnum(id[0]) &&
                           std::all_of(id.begin(), id.end(), [](char c) {
                             return is_ascii_alnum(c) || c == '_' || c == '-';
                           });
  if (!well_formed)
    reject(field, id,
           fmt::format("must be a letter or digit followed by at most {} letters, digits, "
                       "'_' or '-'",
                       max_length - 1));
}

}  // namespace

void validate_experiment_id(std::string_view id) { validate_id("experiment id", id, 64); }

void validate_run_id(std::string_view id) { validate_id("run id", id, 256); }

}  // namespace kiln::registry
