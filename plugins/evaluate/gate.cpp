#include "gate.h"

#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/names.h>

#include <fmt/format.h>

#include <charconv>
#include <map>
#include <optional>

namespace kiln::evaluate {
namespace {

// Metrics a gate can test, and whether higher is better.
const std::map<std::string, bool> kGateMetrics = {
    {"accuracy", true}, {"macro_f1", true}, {"loss", false}};

const std::map<std::string, nlohmann::json> kChampionDefaults = {
    {"alias", "champion"}, {"metric", "accuracy"}, {"delta", 0.0}};

double metric_value(const ClassificationMetrics& metrics, const std::string& name) {
  if (name == "accuracy") return metrics.accuracy;
  if (name == "macro_f1") return metrics.macro_f1;
  return metrics.loss;
}

void apply_thresholds(const nlohmann::json& gate, const ClassificationMetrics& metrics,
                      GateOutcome& outcome) {
  for (const auto& [name, threshold_json] : gate.items()) {
    const bool higher_is_better = kGateMetrics.at(name);
    const double value = metric_value(metrics, name), threshold = threshold_json.get<double>();
    const bool passed = higher_is_better ? value >= threshold : value <= threshold;
    outcome.checks.push_back({{"kind", "threshold"},
                              {"metric", name},
                              {"value", value},
                              {"threshold", threshold},
                              {"passed", passed}});
    if (!passed)
      outcome.failures.push_back(fmt::format("{} {:.4f} is not {} {}", name, value,
                                             higher_is_better ? ">=" : "<=", threshold));
  }
}

std::optional<double> parse_double(const std::string& text) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string tag_or(const registry::ModelVersionInfo& version, const std::string& key) {
  const auto it = version.tags.find(key);
  return it == version.tags.end() ? std::string() : it->second;
}

// A champion check that could not compare: recorded and logged, never a refusal.
void skip_champion(nlohmann::json check, const std::string& why, GateOutcome& outcome) {
  log::info("evaluate: beat_champion not applied: {}; the absolute thresholds decide", why);
  check["passed"] = true;
  check["skipped"] = why;
  outcome.checks.push_back(std::move(check));
}

// The champion's metric comes from its version's tags, written by `register`:
// kiln.test_dataset and kiln.eval.<metric>. Models are compared only on the same
// test dataset version; on another one (or with no champion yet) the check is
// skipped, because numbers on different test sets say nothing about each other.
void apply_champion_rule(const nlohmann::json& rule, const ClassificationMetrics& metrics,
                         const std::string& dataset_id, const std::filesystem::path& root,
                         GateOutcome& outcome) {
  const std::string model = rule.at("model");
  const std::string alias = rule.value("alias", "champion");
  const std::string metric = rule.value("metric", "accuracy");
  const double delta = rule.value("delta", 0.0);
  nlohmann::json check = {{"kind", "champion"},
                          {"model", model},
                          {"alias", alias},
                          {"metric", metric},
                          {"delta", delta}};
  const registry::MlflowStore store(root);
  const std::optional<std::int64_t> holder = store.alias_version(model, alias);
  if (!holder)
    return skip_champion(check, fmt::format("{} has no '{}' yet", model, alias), outcome);
  const registry::ModelVersionInfo champion = store.get_version(model, *holder);
  check["champion_version"] = champion.version;
  const std::string champion_dataset = tag_or(champion, "kiln.test_dataset");
  if (champion_dataset != dataset_id)
    return skip_champion(check,
                         fmt::format("{} version {} ('{}') was evaluated on test dataset '{}', "
                                     "this model on '{}'",
                                     model, champion.version, alias, champion_dataset, dataset_id),
                         outcome);
  const auto best = parse_double(tag_or(champion, "kiln.eval." + metric));
  if (!best)
    return skip_champion(
        check,
        fmt::format("{} version {} has no kiln.eval.{} tag", model, champion.version, metric),
        outcome);
  const bool higher_is_better = kGateMetrics.at(metric);
  const double value = metric_value(metrics, metric);
  const double margin = higher_is_better ? value - *best : *best - value;
  const bool passed = margin >= delta;
  check.update({{"value", value}, {"champion_value", *best}, {"passed", passed}});
  outcome.checks.push_back(check);
  if (!passed)
    outcome.failures.push_back(
        fmt::format("{} {:.4f} does not beat {} version {} ('{}', {:.4f}) by >= {}", metric, value,
                    model, champion.version, alias, *best, delta));
}

}  // namespace

nlohmann::json GateOutcome::to_json() const {
  return {{"passed", passed()}, {"checks", checks}, {"reasons", failures}};
}

GateOutcome apply_gate(const nlohmann::json& gate, const nlohmann::json& beat_champion,
                       const ClassificationMetrics& metrics, const std::string& dataset_id,
                       const std::filesystem::path& registry_root) {
  GateOutcome outcome;
  apply_thresholds(gate, metrics, outcome);
  if (!beat_champion.empty())
    apply_champion_rule(beat_champion, metrics, dataset_id, registry_root, outcome);
  return outcome;
}

namespace {

void check_metric_name(const Params& params, const char* param, const std::string& name) {
  if (!kGateMetrics.contains(name))
    params.fail(param,
                fmt::format("unknown metric '{}'; gates test accuracy, macro_f1, loss", name));
}

void check_champion_rule(const Params& params) {
  const nlohmann::json& rule = params.get("beat_champion");
  if (!rule.is_object())
    params.fail("beat_champion", "must be a mapping {model, alias, metric, delta}");
  if (rule.empty()) return;
  for (const auto& [key, value] : rule.items())
    if (key != "model" && !kChampionDefaults.contains(key))
      params.fail("beat_champion",
                  fmt::format("unknown key '{}'; expected model, alias, metric, delta", key));
  if (!rule.contains("model") || !rule["model"].is_string())
    params.fail("beat_champion", "needs 'model': the registered model whose champion to beat");
  try {
    registry::validate_model_name(rule["model"].get<std::string>());
    registry::validate_alias(rule.value("alias", "champion"));
  } catch (const nlohmann::json::exception&) {
    params.fail("beat_champion", "'alias' must be a string");
  } catch (const ConfigError& error) {
    params.fail("beat_champion", error.what());
  }
  if (!rule.value("metric", nlohmann::json("accuracy")).is_string())
    params.fail("beat_champion", "'metric' must be a string");
  check_metric_name(params, "beat_champion", rule.value("metric", "accuracy"));
  const nlohmann::json delta = rule.value("delta", nlohmann::json(0.0));
  if (!delta.is_number() || delta.get<double>() < 0)
    params.fail("beat_champion", "'delta' must be a number >= 0");
}

}  // namespace

void check_gate_params(const Params& params) {
  const nlohmann::json& gate = params.get("gate");
  if (!gate.is_object()) params.fail("gate", "must be a mapping of metric to threshold");
  for (const auto& [name, threshold] : gate.items()) {
    check_metric_name(params, "gate", name);
    if (!threshold.is_number())
      params.fail("gate", fmt::format("threshold of '{}' must be a number", name));
  }
  check_champion_rule(params);
}

}  // namespace kiln::evaluate
