#include <kiln/error.h>
#include <kiln/params.h>

#include <fmt/format.h>

namespace kiln {

const char* to_string(ParamType type) noexcept {
  switch (type) {
    case ParamType::Bool:
      return "bool";
    case ParamType::Int:
      return "int";
    case ParamType::Float:
      return "float";
    case ParamType::String:
      return "string";
    case ParamType::Path:
      return "path";
    case ParamType::IntList:
      return "list of int";
    case ParamType::FloatList:
      return "list of float";
    case ParamType::StringList:
      return "list of string";
    case ParamType::Object:
      return "mapping or list";
  }
  return "unknown";
}

ParamSchema& ParamSchema::add(ParamSpec spec) {
  if (find(spec.name) != nullptr)
    throw PluginError(fmt::format("parameter '{}' declared twice in one schema", spec.name));
  specs_.push_back(std::move(spec));
  return *this;
}

ParamSchema& ParamSchema::required(std::string name, ParamType type, std::string doc) {
  return add({std::move(name), type, std::nullopt, std::move(doc), {}});
}

ParamSchema& ParamSchema::optional(std::string name, ParamType type, nlohmann::json default_value,
                                   std::string doc) {
  return add({std::move(name), type, std::move(default_value), std::move(doc), {}});
}

ParamSchema& ParamSchema::choice(std::string name, std::vector<std::string> choices,
                                 std::string doc) {
  if (choices.empty()) throw PluginError(fmt::format("parameter '{}' has no choices", name));
  nlohmann::json first = choices.front();
  return add(
      {std::move(name), ParamType::String, std::move(first), std::move(doc), std::move(choices)});
}

const ParamSpec* ParamSchema::find(std::string_view name) const noexcept {
  for (const auto& spec : specs_)
    if (spec.name == name) return &spec;
  return nullptr;
}

Params::Params(std::string stage, nlohmann::json values, std::map<std::string, std::string> origins)
    : stage_(std::move(stage)), values_(std::move(values)) {
  for (auto& [key, origin] : origins) origins_.emplace(key, std::move(origin));
}

const nlohmann::json& Params::get(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end())
    throw InternalError(fmt::format(
        "stage '{}' read parameter '{}' that its schema does not declare", stage_, name));
  return *it;
}

bool Params::has(std::string_view name) const { return values_.contains(name); }

namespace {
template <class T>
T read_as(const Params& params, std::string_view name) {
  const nlohmann::json& value = params.get(name);
  try {
    return value.get<T>();
  } catch (const nlohmann::json::exception&) {
    throw InternalError(fmt::format("stage '{}' read parameter '{}' as the wrong type (value {})",
                                    params.stage(), name, value.dump()));
  }
}
}  // namespace

bool Params::get_bool(std::string_view name) const { return read_as<bool>(*this, name); }
std::int64_t Params::get_int(std::string_view name) const {
  return read_as<std::int64_t>(*this, name);
}
double Params::get_float(std::string_view name) const { return read_as<double>(*this, name); }
std::string Params::get_string(std::string_view name) const {
  return read_as<std::string>(*this, name);
}
std::filesystem::path Params::get_path(std::string_view name) const {
  return read_as<std::string>(*this, name);
}
std::vector<std::int64_t> Params::get_int_list(std::string_view name) const {
  return read_as<std::vector<std::int64_t>>(*this, name);
}
std::vector<double> Params::get_float_list(std::string_view name) const {
  return read_as<std::vector<double>>(*this, name);
}
std::vector<std::string> Params::get_string_list(std::string_view name) const {
  return read_as<std::vector<std::string>>(*this, name);
}

std::string Params::origin(std::string_view name) const {
  const auto it = origins_.find(name);
  return it == origins_.end() ? std::string("default") : it->second;
}

void Params::fail(std::string_view name, std::string_view problem) const {
  throw ConfigError(fmt::format("{}: {}.with.{}: {}", origin(name), stage_, name, problem));
}

}  // namespace kiln
