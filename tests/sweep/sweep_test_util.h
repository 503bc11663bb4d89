// Building sweep specs and studies by hand for the sampler and pruner tests.
#pragma once

#include <kiln/sweep/spec.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::sweep {

inline SweepParam param(std::string path, Distribution distribution) {
  SweepParam p;
  p.path = std::move(path);
  p.distribution = std::move(distribution);
  return p;
}

inline SweepParam categorical(std::string path, std::vector<nlohmann::json> values) {
  SweepParam p = param(std::move(path), CategoricalDistribution{values});
  p.choice_values = std::move(values);
  return p;
}

inline SweepSpec test_spec(SamplerKind kind, std::vector<SweepParam> params,
                           Direction direction = Direction::Maximize) {
  SweepSpec spec;
  spec.params = std::move(params);
  spec.sampler.kind = kind;
  spec.objective.metric = "score";
  spec.objective.direction = direction;
  spec.trials = 1;
  return spec;
}

// Appends a trial numbered as the study's next.
inline Trial& add_trial(Study& study, TrialState state, std::map<std::string, double> params = {},
                        std::optional<double> value = std::nullopt,
                        std::map<std::int64_t, double> intermediate = {}) {
  Trial trial;
  trial.number = static_cast<int>(study.trials.size());
  trial.state = state;
  trial.params = std::move(params);
  trial.value = value;
  trial.intermediate = std::move(intermediate);
  study.trials.push_back(std::move(trial));
  return study.trials.back();
}

}  // namespace kiln::sweep
