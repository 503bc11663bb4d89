// The pipeline's `on_failure:` and `on_failure_timeout_s:` keys (docs/cli.md,
// "Alerts"). `kiln run` runs the command; here it is only checked and stored.
#include "yaml_document.h"

#include <kiln/error.h>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

namespace kiln {
namespace {

bool blank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

// Where the top-level `key`'s value is; an empty value has no position of its own
// (yaml-cpp places it at the next line), so then where the key is.
std::string where_value(const PipelineYaml& doc, const std::string& key) {
  for (const auto& entry : doc.root)
    if (entry.first.Scalar() == key)
      return doc.where(entry.second.IsNull() ? entry.first : entry.second);
  return doc.display_path;
}

std::vector<std::string> parse_command(const PipelineYaml& doc, const YAML::Node& node) {
  const std::string expected =
      "on_failure must be a command: a string (run with /bin/sh -c) or a list of "
      "arguments";
  if (node.IsNull())
    throw ConfigError(fmt::format("{}: {}, not empty", where_value(doc, "on_failure"), expected));
  if (node.IsScalar()) {
    if (blank(node.Scalar()))
      throw ConfigError(fmt::format("{}: {}, not an empty string", doc.where(node), expected));
    return {"/bin/sh", "-c", node.Scalar()};
  }
  if (!node.IsSequence()) throw ConfigError(fmt::format("{}: {}", doc.where(node), expected));
  if (node.size() == 0)
    throw ConfigError(fmt::format("{}: {}, not an empty list", doc.where(node), expected));
  std::vector<std::string> argv;
  for (const auto& item : node) {
    if (!item.IsScalar())
      throw ConfigError(
          fmt::format("{}: on_failure: each argument must be a single value", doc.where(item)));
    argv.push_back(item.Scalar());
  }
  if (blank(argv.front()))
    throw ConfigError(
        fmt::format("{}: on_failure: the program (first argument) is empty", doc.where(node[0])));
  return argv;
}

std::string shown(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsMap()) return "a mapping";
  return node.IsSequence() ? "a list" : "nothing";
}

double parse_timeout(const PipelineYaml& doc, const YAML::Node& node) {
  const std::string text = node.IsScalar() ? node.Scalar() : std::string();
  char* end = nullptr;
  const double seconds = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(seconds) ||
      seconds <= 0.0)
    throw ConfigError(
        fmt::format("{}: on_failure_timeout_s must be a number of seconds above 0, got {}",
                    where_value(doc, "on_failure_timeout_s"), shown(node)));
  return seconds;
}

}  // namespace

FailureCommand parse_on_failure(const PipelineYaml& doc) {
  FailureCommand command;
  const YAML::Node node = doc.root["on_failure"];
  const YAML::Node timeout = doc.root["on_failure_timeout_s"];
  if (!node) {
    if (timeout)
      throw ConfigError(fmt::format("{}: on_failure_timeout_s is set but there is no on_failure",
                                    doc.where(timeout)));
    return command;
  }
  command.argv = parse_command(doc, node);
  command.origin = doc.where(node);
  if (timeout) command.timeout_s = parse_timeout(doc, timeout);
  return command;
}

}  // namespace kiln
