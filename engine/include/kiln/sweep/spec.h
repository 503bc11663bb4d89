// The `sweep:` section of a pipeline file (docs/sweeps.md): the search space over
// stage parameters, the objective, the sampler, the pruner and the budget.
// parse_sweep() checks everything the file alone can tell, check_sweep() what needs
// the stage types (the parameters' schemas). Every error is one ConfigError line
// "file:line:col: sweep...: what is wrong".
#pragma once

#include <kiln/pipeline.h>
#include <kiln/sweep/asha.h>
#include <kiln/sweep/study.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::sweep {

// One dimension of the search space: `<stage>.with.<param>: {<distribution>}`.
struct SweepParam {
  std::string path;  // "train.with.lr"
  Distribution distribution;
  // For `choice`: the choices as written (mappings and lists kept structured);
  // the distribution holds them as scalars or compact JSON text. Empty otherwise.
  std::vector<nlohmann::json> choice_values;
  std::string origin;  // "file:line:col" of the path's key

  std::string stage() const;  // "train"
  std::string param() const;  // "lr"
};

struct SweepObjective {
  std::string metric;  // "train/val_accuracy"
  Direction direction = Direction::Minimize;
  std::string origin;  // "file:line:col" of `metric:`, for the integrator's metric check
};

enum class SamplerKind { Grid, Random, Tpe };
const char* to_string(SamplerKind kind) noexcept;

struct SamplerSpec {
  SamplerKind kind = SamplerKind::Tpe;
  std::uint64_t seed = 0;
  bool multivariate = false;  // TPE only: one joint estimator over all parameters
};

enum class PrunerKind { None, Asha };
const char* to_string(PrunerKind kind) noexcept;

struct PrunerSpec {
  PrunerKind kind = PrunerKind::None;
  AshaConfig asha;  // meaningful for Asha
};

struct SweepSpec {
  std::vector<SweepParam> params;  // in file order
  SweepObjective objective;
  SamplerSpec sampler;
  PrunerSpec pruner;
  int trials = 0;                    // for grid: defaults to the grid's size
  std::optional<double> time_limit;  // seconds
  int workers = 1;
  std::string origin;  // "file:line:col" of the `sweep:` key
};

// The structured value a trial applies as an override for `param`, from its
// internal representation (a number, or a choice's index).
nlohmann::json value_of(const SweepParam& param, double internal);

// The `sweep:` section of a parsed pipeline, or nullopt when it has none.
std::optional<SweepSpec> parse_sweep(const PipelineSource& source);

// Checks each parameter against its stage type's schema: the name exists (did you
// mean), and the distribution's values suit the parameter's type.
void check_sweep(const SweepSpec& spec, const Pipeline& pipeline);

}  // namespace kiln::sweep
