#include "sweep/spec_reader.h"

#include "pipeline/params_from_yaml.h"

#include <kiln/error.h>

#include <fmt/format.h>

namespace kiln::sweep {
using nlohmann::json;

namespace {

std::string describe(const YAML::Node& node) {
  if (node.IsScalar()) return fmt::format("'{}'", node.Scalar());
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

}  // namespace

void SpecReader::fail(const YAML::Node& node, std::string_view context,
                      std::string_view problem) const {
  throw ConfigError(fmt::format("{}: {}: {}", doc.where(node), context, problem));
}

json SpecReader::value(const YAML::Node& node) const { return yaml_to_json(doc, node); }

double SpecReader::number(const YAML::Node& node, std::string_view context,
                          std::string_view what) const {
  const json parsed = node.IsScalar() ? value(node) : json();
  if (!parsed.is_number())
    fail(node, context, fmt::format("{} must be a number, got {}", what, describe(node)));
  return parsed.get<double>();
}

std::int64_t SpecReader::integer(const YAML::Node& node, std::string_view context,
                                 std::string_view what) const {
  const json parsed = node.IsScalar() ? value(node) : json();
  if (!parsed.is_number_integer())
    fail(node, context, fmt::format("{} must be an integer, got {}", what, describe(node)));
  return parsed.get<std::int64_t>();
}

bool SpecReader::boolean(const YAML::Node& node, std::string_view context,
                         std::string_view what) const {
  const json parsed = node.IsScalar() ? value(node) : json();
  if (!parsed.is_boolean())
    fail(node, context, fmt::format("{} must be true or false, got {}", what, describe(node)));
  return parsed.get<bool>();
}

std::string SpecReader::text(const YAML::Node& node, std::string_view context,
                             std::string_view what) const {
  if (!node.IsScalar() || node.Scalar().empty())
    fail(node, context, fmt::format("{} must be a name, got {}", what, describe(node)));
  return node.Scalar();
}

std::string SpecReader::one_of(const YAML::Node& node, std::string_view context,
                               std::string_view what,
                               const std::vector<std::string>& allowed) const {
  std::string given = text(node, context, what);
  for (const auto& candidate : allowed)
    if (candidate == given) return given;
  fail(node, context,
       fmt::format("{} '{}' is not one of {}{}", what, given, join(allowed),
                   did_you_mean(given, allowed)));
}

std::vector<MappingEntry> SpecReader::mapping(const YAML::Node& node, std::string_view context,
                                              const std::vector<std::string>& allowed) const {
  if (!node.IsMap()) fail(node, context, fmt::format("expected a mapping, got {}", describe(node)));
  std::vector<MappingEntry> entries = mapping_entries(doc, node, context);
  check_keys(doc, node, context, allowed);
  return entries;
}

}  // namespace kiln::sweep
