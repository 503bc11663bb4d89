// check_sweep: the sweep's parameters against the stage types' schemas, so that a
// typo or a wrong type fails before the first trial instead of in every trial.
#include "pipeline/yaml_document.h"

#include <kiln/error.h>
#include <kiln/sweep/spec.h>

#include <fmt/format.h>

#include <algorithm>

namespace kiln::sweep {
using nlohmann::json;

namespace {

bool all_of(const json& value, bool (json::*is)() const noexcept) {
  return value.is_array() &&
         std::all_of(value.begin(), value.end(), [&](const json& item) { return (item.*is)(); });
}

// Whether a choice can be given to a parameter of `spec`'s type as it stands;
// Object parameters are checked by the stage's own `check` when a trial resolves.
bool accepts(const ParamSpec& spec, const json& value) {
  switch (spec.type) {
    case ParamType::Bool:
      return value.is_boolean();
    case ParamType::Int:
      return value.is_number_integer();
    case ParamType::Float:
      return value.is_number();
    case ParamType::String:
      return value.is_string() &&
             (spec.choices.empty() || std::find(spec.choices.begin(), spec.choices.end(),
                                                value.get<std::string>()) != spec.choices.end());
    case ParamType::Path:
      return value.is_string();
    case ParamType::IntList:
      return all_of(value, &json::is_number_integer);
    case ParamType::FloatList:
      return all_of(value, &json::is_number);
    case ParamType::StringList:
      return all_of(value, &json::is_string);
    case ParamType::Object:
      return true;
  }
  return false;
}

void check_type(const SweepParam& param, const ParamSpec& spec) {
  const auto fail = [&](const std::string& problem) {
    throw ConfigError(fmt::format("{}: sweep.space.{}: {}", param.origin, param.path, problem));
  };
  const char* type = to_string(spec.type);
  if (const auto* range = std::get_if<FloatDistribution>(&param.distribution)) {
    if (spec.type != ParamType::Float)
      fail(fmt::format("{} draws floats, but the parameter is {}",
                       range->log ? "loguniform" : "uniform", type));
  } else if (std::holds_alternative<IntDistribution>(param.distribution)) {
    if (spec.type != ParamType::Int && spec.type != ParamType::Float)
      fail(fmt::format("int draws integers, but the parameter is {}", type));
  } else {
    const std::string accepted =
        spec.choices.empty() ? type : fmt::format("{}: one of {}", type, join(spec.choices));
    for (const auto& value : param.choice_values)
      if (!accepts(spec, value))
        fail(fmt::format("choice {} is not a valid value of the parameter ({})", value.dump(),
                         accepted));
  }
}

}  // namespace

void check_sweep(const SweepSpec& spec, const Pipeline& pipeline) {
  for (const auto& param : spec.params) {
    const PipelineStage* stage = pipeline.find(param.stage());
    if (stage == nullptr)
      throw ConfigError(
          fmt::format("{}: sweep.space: '{}' names stage '{}', which is not a "
                      "stage of this pipeline",
                      param.origin, param.path, param.stage()));
    const ParamSchema& schema = stage->type->params;
    const ParamSpec* found = schema.find(param.param());
    if (found == nullptr) {
      std::vector<std::string> known;
      for (const auto& candidate : schema.specs()) known.push_back(candidate.name);
      throw ConfigError(fmt::format(
          "{}: sweep.space: stage '{}' ({}): unknown parameter '{}'{}; parameters of {}: {}",
          param.origin, stage->name, stage->type->name, param.param(),
          did_you_mean(param.param(), known), stage->type->name, join(known)));
    }
    check_type(param, *found);
  }
}

}  // namespace kiln::sweep
