// parse_sweep: the `sweep:` section's objective, sampler, pruner and budget (the
// space is spec_space.cpp), each error with its file:line:col.
#include "sweep/spec_reader.h"

#include <kiln/error.h>
#include <kiln/sweep/sampler.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln::sweep {
using nlohmann::json;

namespace {

const std::vector<std::string> kSweepKeys = {"space",  "objective",  "sampler", "pruner",
                                             "trials", "time_limit", "workers"};
const std::vector<std::string> kDirections = {"maximize", "minimize"};
const std::vector<std::string> kSamplerTypes = {"grid", "random", "tpe"};
const std::vector<std::string> kPrunerTypes = {"none", "asha"};

SweepObjective parse_objective(const SpecReader& reader, const YAML::Node& node) {
  const char* context = "sweep.objective";
  reader.mapping(node, context, {"metric", "direction"});
  const YAML::Node metric = node["metric"];
  if (!metric) reader.fail(node, context, "no `metric:` (the logged metric to optimize)");
  const YAML::Node direction = node["direction"];
  if (!direction) reader.fail(node, context, "no `direction:` (maximize or minimize)");
  SweepObjective objective;
  objective.metric = reader.text(metric, context, "metric");
  objective.origin = reader.doc.where(metric);
  objective.direction = reader.one_of(direction, context, "direction", kDirections) == "maximize"
                            ? Direction::Maximize
                            : Direction::Minimize;
  return objective;
}

SamplerSpec parse_sampler(const SpecReader& reader, const YAML::Node& node) {
  const char* context = "sweep.sampler";
  if (!node.IsMap() || !node["type"])
    reader.fail(node, context, "expected a mapping with `type:` (grid, random or tpe)");
  const std::string type = reader.one_of(node["type"], context, "type", kSamplerTypes);
  SamplerSpec sampler;
  if (type == "grid") {
    sampler.kind = SamplerKind::Grid;
    reader.mapping(node, context, {"type"});
    return sampler;
  }
  sampler.kind = type == "random" ? SamplerKind::Random : SamplerKind::Tpe;
  reader.mapping(node, context,
                 type == "tpe" ? std::vector<std::string>{"type", "seed", "multivariate"}
                               : std::vector<std::string>{"type", "seed"});
  if (const YAML::Node seed = node["seed"]) {
    const std::int64_t value = reader.integer(seed, context, "seed");
    if (value < 0) reader.fail(seed, context, fmt::format("seed must be >= 0, got {}", value));
    sampler.seed = static_cast<std::uint64_t>(value);
  }
  if (const YAML::Node multivariate = node["multivariate"])
    sampler.multivariate = reader.boolean(multivariate, context, "multivariate");
  return sampler;
}

std::int64_t at_least(const SpecReader& reader, const YAML::Node& node, std::string_view context,
                      std::string_view what, std::int64_t minimum) {
  const std::int64_t value = reader.integer(node, context, what);
  if (value < minimum)
    reader.fail(node, context, fmt::format("{} must be >= {}, got {}", what, minimum, value));
  return value;
}

// A count held as an int (trials, workers).
int count_at_least(const SpecReader& reader, const YAML::Node& node, std::string_view what,
                   int minimum) {
  const std::int64_t value = at_least(reader, node, "sweep", what, minimum);
  if (value > std::numeric_limits<int>::max())
    reader.fail(node, "sweep",
                fmt::format("{} must be at most {}", what, std::numeric_limits<int>::max()));
  return static_cast<int>(value);
}

PrunerSpec parse_pruner(const SpecReader& reader, const YAML::Node& node) {
  const char* context = "sweep.pruner";
  if (!node.IsMap() || !node["type"])
    reader.fail(node, context, "expected a mapping with `type:` (asha or none)");
  PrunerSpec pruner;
  if (reader.one_of(node["type"], context, "type", kPrunerTypes) == "none") {
    reader.mapping(node, context, {"type"});
    return pruner;
  }
  pruner.kind = PrunerKind::Asha;
  reader.mapping(node, context, {"type", "min_epochs", "max_epochs", "reduction_factor"});
  if (const YAML::Node min_epochs = node["min_epochs"])
    pruner.asha.min_epochs = at_least(reader, min_epochs, context, "min_epochs", 1);
  const YAML::Node max_epochs = node["max_epochs"];
  if (!max_epochs)
    reader.fail(node, context, "asha needs `max_epochs:` (the epochs of a full trial)");
  pruner.asha.max_epochs =
      at_least(reader, max_epochs, context, "max_epochs", pruner.asha.min_epochs);
  if (const YAML::Node factor = node["reduction_factor"])
    pruner.asha.reduction_factor = at_least(reader, factor, context, "reduction_factor", 2);
  return pruner;
}

// Grid search enumerates its values, so continuous ranges have no place in it.
void check_grid(const SweepSpec& spec) {
  for (const auto& param : spec.params) {
    const auto* range = std::get_if<FloatDistribution>(&param.distribution);
    if (range == nullptr) continue;
    throw ConfigError(
        fmt::format("{}: sweep.space.{}: the grid sampler needs `choice` or `int` values, not {}",
                    param.origin, param.path, range->log ? "loguniform" : "uniform"));
  }
}

void parse_budget(const SpecReader& reader, const YAML::Node& sweep, SweepSpec& spec) {
  const YAML::Node trials = sweep["trials"];
  if (spec.sampler.kind == SamplerKind::Grid) {
    const int size = static_cast<int>(
        std::min<std::int64_t>(grid_size(spec).value_or(0), std::numeric_limits<int>::max()));
    spec.trials = trials ? count_at_least(reader, trials, "trials", 1) : size;
    if (spec.trials > size)
      reader.fail(
          trials, "sweep",
          fmt::format("trials {} is more than the grid's {} combinations", spec.trials, size));
  } else {
    if (!trials)
      throw ConfigError(
          fmt::format("{}: sweep: no `trials:` (how many trials to run)", spec.origin));
    spec.trials = count_at_least(reader, trials, "trials", 1);
  }
  if (const YAML::Node workers = sweep["workers"])
    spec.workers = count_at_least(reader, workers, "workers", 1);
  if (const YAML::Node limit = sweep["time_limit"]) {
    const double seconds = reader.number(limit, "sweep", "time_limit");
    if (!(seconds > 0) || !std::isfinite(seconds))
      reader.fail(
          limit, "sweep",
          fmt::format("time_limit must be a positive number of seconds, got {}", limit.Scalar()));
    spec.time_limit = seconds;
  }
}

}  // namespace

const char* to_string(SamplerKind kind) noexcept {
  switch (kind) {
    case SamplerKind::Grid:
      return "grid";
    case SamplerKind::Random:
      return "random";
    case SamplerKind::Tpe:
      return "tpe";
  }
  return "?";
}

const char* to_string(PrunerKind kind) noexcept {
  return kind == PrunerKind::Asha ? "asha" : "none";
}

std::string SweepParam::stage() const { return path.substr(0, path.find('.')); }

std::string SweepParam::param() const { return path.substr(path.rfind('.') + 1); }

json value_of(const SweepParam& param, double internal) {
  if (std::holds_alternative<CategoricalDistribution>(param.distribution)) {
    const double index = std::round(internal);
    if (index < 0 || index >= static_cast<double>(param.choice_values.size()))
      throw InternalError(
          fmt::format("sweep: choice index {} out of range for {}", internal, param.path));
    return param.choice_values[static_cast<std::size_t>(index)];
  }
  return to_external(param.distribution, internal);
}

std::optional<SweepSpec> parse_sweep(const PipelineSource& source) {
  const PipelineYaml& doc = *source.yaml;
  const SpecReader reader{doc};
  std::optional<YAML::Node> found;
  for (const auto& entry : mapping_entries(doc, doc.root, "pipeline"))
    if (entry.key == "sweep") found = entry.key_node;
  if (!found) return std::nullopt;
  const YAML::Node key = *found;
  const YAML::Node sweep = doc.root["sweep"];
  if (!sweep.IsMap())
    reader.fail(key, "sweep", "expected a mapping with `space:`, `objective:` and `trials:`");
  reader.mapping(sweep, "sweep", kSweepKeys);

  SweepSpec spec;
  spec.origin = doc.where(key);
  std::vector<std::string> stages;
  for (const auto& stage : source.stages) stages.push_back(stage.name);
  if (!sweep["space"]) reader.fail(key, "sweep", "no `space:` (the parameters to sweep)");
  spec.params = parse_space(reader, sweep["space"], stages);
  if (!sweep["objective"]) reader.fail(key, "sweep", "no `objective:` ({metric, direction})");
  spec.objective = parse_objective(reader, sweep["objective"]);
  if (const YAML::Node sampler = sweep["sampler"]) spec.sampler = parse_sampler(reader, sampler);
  if (spec.sampler.kind == SamplerKind::Grid) check_grid(spec);
  if (const YAML::Node pruner = sweep["pruner"]) spec.pruner = parse_pruner(reader, pruner);
  parse_budget(reader, sweep, spec);
  return spec;
}

}  // namespace kiln::sweep
