// `sweep.space`: parameter paths and their distributions, mapped onto Optuna's
// distributions (kiln/sweep/study.h) with the same constraints Optuna enforces
// (optuna/distributions.py: low <= high, log needs low > 0, no log with a step),
// except that kiln refuses what Optuna silently adjusts (a range that is not a
// whole number of steps) and an empty range (low == high), which sweeps nothing.
#include "sweep/spec_reader.h"

#include <kiln/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace kiln::sweep {
using nlohmann::json;

namespace {

const std::vector<std::string> kDistributionKeys = {"uniform", "loguniform", "int", "choice"};
const std::vector<std::string> kOptionKeys = {"log", "step"};

struct ParamReader {
  const SpecReader& reader;
  const MappingEntry& entry;
  std::string context;  // "sweep.space.train.with.lr"

  [[noreturn]] void fail(const YAML::Node& node, std::string_view problem) const {
    reader.fail(node, context, problem);
  }
};

void check_path(const SpecReader& reader, const MappingEntry& entry,
                const std::vector<std::string>& stages) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t dot = entry.key.find('.'); dot != std::string::npos;
       start = dot + 1, dot = entry.key.find('.', start))
    parts.push_back(entry.key.substr(start, dot - start));
  parts.push_back(entry.key.substr(start));
  const bool shaped = parts.size() == 3 && parts[1] == "with" &&
                      std::none_of(parts.begin(), parts.end(),
                                   [](const std::string& part) { return part.empty(); });
  if (!shaped)
    reader.fail(
        entry.key_node, "sweep.space",
        fmt::format("'{}' is not a parameter path: expected <stage>.with.<param>", entry.key));
  if (std::find(stages.begin(), stages.end(), parts[0]) == stages.end())
    reader.fail(entry.key_node, "sweep.space",
                fmt::format("'{}' names stage '{}', which is not a stage of this pipeline{}",
                            entry.key, parts[0], did_you_mean(parts[0], stages)));
}

// The one distribution key of the parameter's mapping.
std::string distribution_key(const ParamReader& p) {
  std::string found;
  for (const auto& item : p.entry.value) {
    const std::string key = item.first.Scalar();
    const bool is_distribution = std::find(kDistributionKeys.begin(), kDistributionKeys.end(),
                                           key) != kDistributionKeys.end();
    if (!is_distribution &&
        std::find(kOptionKeys.begin(), kOptionKeys.end(), key) == kOptionKeys.end()) {
      std::vector<std::string> known = kDistributionKeys;
      known.insert(known.end(), kOptionKeys.begin(), kOptionKeys.end());
      p.fail(item.first, fmt::format("unknown distribution key '{}'{}; expected one of: {}", key,
                                     did_you_mean(key, known), join(known)));
    }
    if (!is_distribution) continue;
    if (!found.empty())
      p.fail(item.first, fmt::format("both '{}' and '{}': give one distribution", found, key));
    found = key;
  }
  if (found.empty())
    p.fail(p.entry.value, fmt::format("no distribution: give one of {}", join(kDistributionKeys)));
  return found;
}

// `[low, high]` as written, checked low < high and, for a log range, low > 0.
std::pair<YAML::Node, YAML::Node> bounds(const ParamReader& p, const YAML::Node& range,
                                         const std::string& key, bool log) {
  if (!range.IsSequence() || range.size() != 2)
    p.fail(range, fmt::format("{} expects [low, high]", key));
  const YAML::Node low = range[0];
  const YAML::Node high = range[1];
  const double low_value = p.reader.number(low, p.context, "low");
  const double high_value = p.reader.number(high, p.context, "high");
  if (!(low_value < high_value))
    p.fail(range, fmt::format("low {} must be below high {}", low.Scalar(), high.Scalar()));
  if (log && low_value <= 0)
    p.fail(range, fmt::format("a log range needs low > 0, got {}", low.Scalar()));
  return {low, high};
}

Distribution float_distribution(const ParamReader& p, const YAML::Node& body,
                                const std::string& key) {
  const bool log = key == "loguniform";
  const auto [low, high] = bounds(p, body[key], key, log);
  FloatDistribution distribution{p.reader.number(low, p.context, "low"),
                                 p.reader.number(high, p.context, "high"), log, std::nullopt};
  if (const YAML::Node log_node = body["log"])
    p.fail(log_node, "`log` applies to int; use loguniform for a float log range");
  if (const YAML::Node step_node = body["step"]) {
    if (log) p.fail(step_node, "loguniform takes no step (Optuna's rule: log or step, not both)");
    const double step = p.reader.number(step_node, p.context, "step");
    const double count = (distribution.high - distribution.low) / step;
    if (!(step > 0) || std::abs(count - std::round(count)) > 1e-9 * std::max(1.0, count))
      p.fail(step_node,
             fmt::format("step {} must be > 0 and divide high - low", step_node.Scalar()));
    distribution.step = step;
  }
  return distribution;
}

Distribution int_distribution(const ParamReader& p, const YAML::Node& body) {
  const bool log = body["log"] && p.reader.boolean(body["log"], p.context, "log");
  const auto [low, high] = bounds(p, body["int"], "int", log);
  IntDistribution distribution{p.reader.integer(low, p.context, "low"),
                               p.reader.integer(high, p.context, "high"), log, 1};
  if (const YAML::Node step_node = body["step"]) {
    const std::int64_t step = p.reader.integer(step_node, p.context, "step");
    if (log && step != 1) p.fail(step_node, "an int log range takes no step (Optuna's rule)");
    if (step < 1 || (distribution.high - distribution.low) % step != 0)
      p.fail(step_node, fmt::format("step {} must be >= 1 and divide high - low", step));
    distribution.step = step;
  }
  return distribution;
}

Distribution choice_distribution(const ParamReader& p, const YAML::Node& body,
                                 std::vector<json>& values) {
  const YAML::Node list = body["choice"];
  if (!list.IsSequence()) p.fail(list, "choice expects a list of values");
  if (list.size() == 0) p.fail(list, "choice is empty: give at least one value");
  for (const auto& option : kOptionKeys)
    if (const YAML::Node node = body[option]) p.fail(node, "choice takes no " + option);
  CategoricalDistribution distribution;
  for (std::size_t i = 0; i < list.size(); ++i) {
    json value = p.reader.value(list[i]);
    if (std::find(values.begin(), values.end(), value) != values.end())
      p.fail(list[i], fmt::format("choice {} appears twice", value.dump()));
    // Optuna's CategoricalDistribution holds scalars only (study.h).
    distribution.choices.push_back(value.is_structured() ? json(value.dump()) : value);
    values.push_back(std::move(value));
  }
  return distribution;
}

SweepParam parse_param(const SpecReader& reader, const MappingEntry& entry) {
  const ParamReader p{reader, entry, "sweep.space." + entry.key};
  if (!entry.value.IsMap())
    p.fail(entry.value, "expected a mapping like {loguniform: [1.0e-4, 1.0e-2]}");
  mapping_entries(reader.doc, entry.value, p.context);
  SweepParam param;
  param.path = entry.key;
  param.origin = reader.doc.where(entry.key_node);
  const std::string key = distribution_key(p);
  if (key == "int") {
    param.distribution = int_distribution(p, entry.value);
  } else if (key == "choice") {
    param.distribution = choice_distribution(p, entry.value, param.choice_values);
  } else {
    param.distribution = float_distribution(p, entry.value, key);
  }
  return param;
}

}  // namespace

std::vector<SweepParam> parse_space(const SpecReader& reader, const YAML::Node& space,
                                    const std::vector<std::string>& stages) {
  if (!space.IsMap() || space.size() == 0)
    reader.fail(space, "sweep.space",
                "expected a mapping of <stage>.with.<param> to distributions");
  std::vector<SweepParam> params;
  for (const auto& entry : mapping_entries(reader.doc, space, "sweep.space")) {
    check_path(reader, entry, stages);
    params.push_back(parse_param(reader, entry));
  }
  return params;
}

}  // namespace kiln::sweep
