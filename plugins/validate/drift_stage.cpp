// Stage "drift": compares a dataset with a reference version (the input produced
// by the stage named in `reference`) feature by feature with
// kiln::data::drift_report, and fails when more than `max_drifting_fraction` of
// the features drift. Metrics "<stage>/max_psi", "mean_psi", "max_ks",
// "drifting_features", "drifting_fraction"; artifact "<stage>-drift.json".
#include <kiln/data/drift.h>
#include <kiln/error.h>
#include <kiln/log.h>

#include "report.h"

#include <fmt/format.h>

namespace kiln::validate {
namespace {

data::DriftOptions parse_options(const Params& params) {
  data::DriftOptions options;
  options.array = params.get_string("array");
  const std::string features = params.get_string("features");
  options.features = features == "elements"  ? data::DriftFeatures::Elements
                     : features == "summary" ? data::DriftFeatures::Summary
                                             : data::DriftFeatures::Auto;
  options.bins = static_cast<int>(params.get_int("bins"));
  if (options.bins < 2 || options.bins > 1000) params.fail("bins", "must lie in [2, 1000]");
  options.psi_threshold = params.get_float("psi_threshold");
  options.ks_threshold = params.get_float("ks_threshold");
  options.max_rows = params.get_int("max_rows");
  if (options.max_rows < 1) params.fail("max_rows", "must be at least 1");
  const double fraction = params.get_float("max_drifting_fraction");
  if (fraction < 0 || fraction > 1) params.fail("max_drifting_fraction", "must lie in [0, 1]");
  return options;
}

void run(StageContext& context) {
  const Params& params = context.params();
  const data::DriftOptions options = parse_options(params);
  const std::string reference_stage = params.get_string("reference");
  const Artifact& reference = dataset_from(context, reference_stage, "reference");
  const Artifact& current = dataset_besides(context, reference_stage);
  const data::DriftReport report = data::drift_report(reference.path, current.path, options);
  const double allowed = params.get_float("max_drifting_fraction");
  const bool passed = report.drifting_fraction() <= allowed;
  nlohmann::json json = report.to_json();
  json["reference"] = reference.content_id;
  json["dataset"] = current.content_id;
  json["passed"] = passed;
  publish(context, "drift.json", json,
          {{"max_psi", report.max_psi},
           {"mean_psi", report.mean_psi},
           {"max_ks", report.max_ks},
           {"drifting_features", static_cast<double>(report.drifting)},
           {"drifting_fraction", report.drifting_fraction()}});
  const std::string summary = fmt::format(
      "{} of {} {} features drift (PSI > {} or KS > {}); max PSI {:.3f}, mean PSI {:.3f}, max KS "
      "{:.3f}",
      report.drifting, report.per_feature.size(), report.features, options.psi_threshold,
      options.ks_threshold, report.max_psi, report.mean_psi, report.max_ks);
  if (!passed)
    throw DataError(fmt::format("dataset {} drifted from reference {}: {}; allowed fraction {}",
                                current.content_id.substr(0, 12),
                                reference.content_id.substr(0, 12), summary, allowed));
  log::info("drift: {}", summary);
  emit_outputs(context, current, "drift.json", "drift", {{"passed", true}, {"summary", summary}});
}

}  // namespace

StageType drift_stage_type() {
  StageType type;
  type.name = "drift";
  type.summary =
      "Per-feature PSI and KS of a dataset against a reference version; fails when too many "
      "features drift";
  type.params
      .required("reference", ParamType::String,
                "the stage in `needs` whose dataset is the reference (e.g. the training data)")
      .optional("array", ParamType::String, "x", "the array compared")
      .choice("features", {"auto", "elements", "summary"},
              "elements: each element (pixel, column); summary: per-row mean, std, min, max, "
              "zero fraction; auto: elements up to 4096 per row")
      .optional("bins", ParamType::Int, 10, "PSI bins (reference quantiles)")
      .optional("psi_threshold", ParamType::Float, 0.25, "a feature drifts above this PSI")
      .optional("ks_threshold", ParamType::Float, 0.1, "... or above this KS statistic")
      .optional("max_drifting_fraction", ParamType::Float, 0.05,
                "the stage fails when a larger share of the features drifts")
      .optional("max_rows", ParamType::Int, 10000, "rows sampled from each version (strided)");
  type.consumes = {"dataset"};
  type.produces = {"dataset", "drift"};
  type.check = [](const Params& params) { parse_options(params); };
  type.run = run;
  return type;
}

}  // namespace kiln::validate
