// plan_sweep: which stages a sweep runs once and which each trial runs, checked
// before anything is written.
#include <kiln/error.h>
#include <kiln/hash.h>
#include <kiln/sweep/journal.h>
#include <kiln/sweep/sweep.h>

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace kiln::sweep {
namespace {

// `stage` and every stage it needs, directly or not.
std::set<std::string> upstream_of(const Pipeline& pipeline, const std::string& stage) {
  std::set<std::string> found;
  std::vector<std::string> unvisited{stage};
  while (!unvisited.empty()) {
    const std::string name = unvisited.back();
    unvisited.pop_back();
    if (found.insert(name).second)
      for (const auto& need : pipeline.find(name)->needs) unvisited.push_back(need);
  }
  return found;
}

// The one stage whose type declares `metric`; ConfigError at the objective's
// position naming the metrics there are when none or several do.
std::string objective_stage(const Pipeline& pipeline, const SweepObjective& objective) {
  std::vector<std::string> stages, metrics;
  for (const auto& stage : pipeline.stages)
    for (const auto& metric : stage.type->metrics) {
      metrics.push_back(metric);
      if (metric == objective.metric) stages.push_back(stage.name);
    }
  if (stages.size() == 1) return stages[0];
  if (stages.size() > 1)
    throw ConfigError(
        fmt::format("{}: sweep.objective.metric: stages {} all log '{}'; a sweep "
                    "needs one stage to read it from",
                    objective.origin, fmt::join(stages, " and "), objective.metric));
  const std::string nearest = nearest_name(objective.metric, metrics);
  throw ConfigError(
      fmt::format("{}: sweep.objective.metric: no stage of the pipeline logs '{}'{}; they log: {}",
                  objective.origin, objective.metric,
                  nearest.empty() ? "" : fmt::format(" (did you mean '{}'?)", nearest),
                  metrics.empty() ? std::string("nothing declared")
                                  : fmt::format("{}", fmt::join(metrics, ", "))));
}

}  // namespace

Pipeline subset(const Pipeline& pipeline, const std::vector<std::string>& stages) {
  Pipeline part = pipeline;
  std::erase_if(part.stages, [&](const PipelineStage& stage) {
    return std::find(stages.begin(), stages.end(), stage.name) == stages.end();
  });
  return part;
}

SweepPlan plan_sweep(const PipelineSource& source, const std::vector<std::string>& overrides,
                     const StageCatalog& catalog) {
  std::optional<SweepSpec> spec = parse_sweep(source);
  if (!spec)
    throw ConfigError(fmt::format("{}: no sweep: section; docs/sweeps.md says how to write one",
                                  source.file.string()));
  SweepPlan plan{.file = source.file,
                 .overrides = overrides,
                 .pipeline = resolve_pipeline(source, catalog),
                 .spec = std::move(*spec)};
  check_sweep(plan.spec, plan.pipeline);
  plan.study = plan.pipeline.name;
  plan.objective_stage = objective_stage(plan.pipeline, plan.spec.objective);

  const std::set<std::string> trial = upstream_of(plan.pipeline, plan.objective_stage);
  std::set<std::string> reached;
  for (const SweepParam& param : plan.spec.params) {
    if (!trial.count(param.stage()))
      throw ConfigError(fmt::format(
          "{}: sweep.space.{}: the objective {} comes from stage '{}', which does not depend on "
          "stage '{}'; sampling it would not change the objective",
          param.origin, param.path, plan.spec.objective.metric, plan.objective_stage,
          param.stage()));
    reached.insert(param.stage());
  }
  // A stage is reached when a sampled parameter is its own or an upstream stage's.
  // Trials run the shared stages too, from the step cache: their outputs are inputs.
  for (const auto& stage : plan.pipeline.stages) {
    if (!trial.count(stage.name)) continue;
    const bool below = std::any_of(stage.needs.begin(), stage.needs.end(),
                                   [&](const std::string& need) { return reached.count(need); });
    if (below) reached.insert(stage.name);
    if (!reached.count(stage.name)) plan.shared_stages.push_back(stage.name);
    plan.trial_stages.push_back(stage.name);
  }

  Sha256 hash;
  hash.update(plan.pipeline.resolved_yaml);
  for (const SweepParam& param : plan.spec.params)
    hash.update(
        fmt::format("\n{}={}", param.path, optuna_distribution_json(param.distribution).dump()));
  hash.update(
      fmt::format("\n{} {}", plan.spec.objective.metric, to_string(plan.spec.objective.direction)));
  plan.spec_sha256 = hash.hex_digest();
  return plan;
}

}  // namespace kiln::sweep
