// The evaluation gate: absolute thresholds on eval metrics, and "beat the current
// champion by >= delta on the same test dataset version". The outcome (passed, each
// check, the reasons of a refusal) goes into the metrics artifact, so that
// `register` can record a refused model without moving its alias.
#pragma once

#include "classification_metrics.h"

#include <kiln/params.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::evaluate {

struct GateOutcome {
  nlohmann::json checks = nlohmann::json::array();  // one object per check, as recorded
  std::vector<std::string> failures;                // why the model was refused
  bool passed() const { return failures.empty(); }
  nlohmann::json to_json() const;
};

// Checks `gate` ({metric: threshold}) and `beat_champion` (see check_gate_params)
// against `metrics` of the model on test dataset version `dataset_id`. The champion
// is read from the registry under `registry_root`.
GateOutcome apply_gate(const nlohmann::json& gate, const nlohmann::json& beat_champion,
                       const ClassificationMetrics& metrics, const std::string& dataset_id,
                       const std::filesystem::path& registry_root);

// Validates the `gate` and `beat_champion` parameters (Params::fail on a problem).
void check_gate_params(const Params& params);

}  // namespace kiln::evaluate
