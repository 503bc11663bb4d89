// Stage "validate": checks one dataset (the input not named by `overlap_with`)
// with kiln::data::validate_dataset. The report goes to the run (metrics
// "<stage>/<check>", artifact "<stage>-validation.json") whether it passes or
// not; a failed check fails the stage with every failed check in one line.
#include <kiln/data/validate.h>
#include <kiln/error.h>
#include <kiln/log.h>

#include "report.h"

#include <fmt/format.h>

namespace kiln::validate {
namespace {

using data::ValidationOptions;

std::vector<data::ArraySchema> parse_schema(const Params& params) {
  std::vector<data::ArraySchema> schema;
  for (const auto& [name, spec] : params.get("schema").items()) {
    if (!spec.is_object())
      params.fail("schema", fmt::format("'{}': expected {{dtype, shape}}", name));
    data::ArraySchema entry{name, std::nullopt, {}};
    for (const auto& [key, value] : spec.items()) {
      if (key == "dtype" && value.is_string() && dtype_from_name(value.get<std::string>()))
        entry.dtype = dtype_from_name(value.get<std::string>());
      else if (key == "shape" && value.is_array() &&
               std::all_of(value.begin(), value.end(),
                           [](const auto& v) { return v.is_number_integer(); }))
        entry.shape = value.get<std::vector<std::int64_t>>();
      else
        params.fail("schema", fmt::format("'{}.{}': expected dtype: <u8|i32|f32|...> or shape: "
                                          "[extents, -1 for any]",
                                          name, key));
    }
    schema.push_back(std::move(entry));
  }
  return schema;
}

std::vector<data::ValueRange> parse_ranges(const Params& params) {
  std::vector<data::ValueRange> ranges;
  for (const auto& [name, bounds] : params.get("ranges").items()) {
    if (!bounds.is_array() || bounds.size() != 2 || !bounds[0].is_number() ||
        !bounds[1].is_number() || bounds[0].get<double>() > bounds[1].get<double>())
      params.fail("ranges", fmt::format("'{}': expected [min, max]", name));
    ranges.push_back({name, bounds[0].get<double>(), bounds[1].get<double>()});
  }
  return ranges;
}

ValidationOptions parse_options(const Params& params) {
  if (!params.get("schema").is_object()) params.fail("schema", "expected a mapping");
  if (!params.get("ranges").is_object()) params.fail("ranges", "expected a mapping");
  ValidationOptions options;
  options.schema = parse_schema(params);
  options.ranges = parse_ranges(params);
  options.allow_nan = params.get_bool("allow_nan");
  options.features = params.get_string("features");
  options.labels = params.get_string("labels");
  options.classes = params.get_int_list("classes");
  options.min_class_fraction = params.get_float("min_class_fraction");
  options.max_duplicate_fraction = params.get_float("max_duplicate_fraction");
  options.allow_conflicting_labels = params.get_bool("allow_conflicting_labels");
  options.max_overlap_rows = params.get_int("max_overlap_rows");
  return options;
}

std::map<std::string, double> metrics_of(const data::ValidationReport& report) {
  const nlohmann::json& stats = report.stats;
  std::map<std::string, double> metrics;
  std::int64_t failed = 0;
  for (const auto& finding : report.findings) failed += finding.passed ? 0 : 1;
  metrics["failed_checks"] = static_cast<double>(failed);
  metrics["rows"] = stats.value("rows", 0.0);
  const nlohmann::json arrays = stats.value("arrays", nlohmann::json::object());
  for (const auto& [name, array] : arrays.items()) {
    metrics[name + "/nan"] = array.value("nan", 0.0);
    metrics[name + "/inf"] = array.value("inf", 0.0);
    if (array["min"].is_number()) metrics[name + "/min"] = array["min"].get<double>();
    if (array["max"].is_number()) metrics[name + "/max"] = array["max"].get<double>();
  }
  if (stats.contains("labels")) {
    metrics["classes"] = stats["labels"].value("classes", 0.0);
    metrics["min_class_fraction"] = stats["labels"].value("min_class_fraction", 0.0);
  }
  if (stats.contains("duplicates")) {
    metrics["duplicate_rows"] = stats["duplicates"].value("rows", 0.0);
    metrics["conflicting_labels"] = stats["duplicates"].value("conflicting_labels", 0.0);
  }
  if (stats.contains("overlap")) metrics["overlap_rows"] = stats["overlap"].value("rows", 0.0);
  return metrics;
}

void run(StageContext& context) {
  const Params& params = context.params();
  ValidationOptions options = parse_options(params);
  const std::string other = params.get_string("overlap_with");
  if (!other.empty()) options.overlap_with = dataset_from(context, other, "overlap_with").path;
  const Artifact& dataset = dataset_besides(context, other);
  const data::ValidationReport report = data::validate_dataset(dataset.path, options);
  nlohmann::json json = report.to_json();
  json["dataset"] = dataset.content_id;
  publish(context, "validation.json", json, metrics_of(report));
  if (!report.passed())
    throw DataError(fmt::format("dataset {} ({}) failed validation: {}",
                                dataset.content_id.substr(0, 12), dataset.path.string(),
                                report.failures()));
  const std::size_t checks = report.findings.size();
  log::info("validate: dataset {} passed {} checks", dataset.content_id.substr(0, 12), checks);
  emit_outputs(context, dataset, "validation.json", "validation",
               {{"passed", true}, {"summary", fmt::format("{} checks passed", checks)}});
}

}  // namespace

StageType validate_stage_type() {
  StageType type;
  type.name = "validate";
  type.summary =
      "Check a dataset (schema, ranges, NaN/Inf, labels, balance, duplicates, overlap); "
      "passes it on when every check holds";
  type.params
      .optional("schema", ParamType::Object, nlohmann::json::object(),
                "per array: {dtype: u8, shape: [-1, 28, 28]} (-1: any extent)")
      .optional("ranges", ParamType::Object, nlohmann::json::object(),
                "per array: [min, max] every value must lie in")
      .optional("allow_nan", ParamType::Bool, false, "allow NaN and Inf in floating-point arrays")
      .optional("features", ParamType::String, "x", "the feature array (duplicates, overlap)")
      .optional("labels", ParamType::String, "y", "the label array (\"\" for none)")
      .optional("classes", ParamType::IntList, nlohmann::json::array(),
                "the expected label set; [] accepts any")
      .optional("min_class_fraction", ParamType::Float, 0.0,
                "every class must hold at least this share of the rows")
      .optional("max_duplicate_fraction", ParamType::Float, 1.0,
                "largest share of rows that repeat an earlier row (features and label)")
      .optional("allow_conflicting_labels", ParamType::Bool, true,
                "allow rows that repeat earlier features under another label")
      .optional("overlap_with", ParamType::String, "",
                "a stage in `needs` whose dataset must not share feature rows with this one")
      .optional("max_overlap_rows", ParamType::Int, 0, "rows allowed in both datasets");
  type.consumes = {"dataset"};
  type.produces = {"dataset", "validation"};
  type.check = [](const Params& params) { parse_options(params); };
  type.run = run;
  return type;
}

}  // namespace kiln::validate
