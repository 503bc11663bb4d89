// The `evaluate` stage: runs the model over a test dataset version, logs
// eval/accuracy, eval/macro_f1 and eval/loss, writes the confusion matrix, and
// applies the gate: absolute thresholds on those metrics. A refused model stops
// the pipeline with the gate-failure exit code.
#include "classification_metrics.h"

#include <kiln/cpu_threads.h>
#include <kiln/data/classification.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/nn/mlp.h>
#include <kiln/plugin.h>

#include <fmt/format.h>

#include <algorithm>

namespace {

using kiln::ParamType;
using kiln::evaluate::ClassificationMetrics;

// Metrics a gate can test, and whether higher is better.
const std::map<std::string, bool> kGateMetrics = {
    {"accuracy", true}, {"macro_f1", true}, {"loss", false}};

double metric_value(const ClassificationMetrics& metrics, const std::string& name) {
  if (name == "accuracy") return metrics.accuracy;
  if (name == "macro_f1") return metrics.macro_f1;
  return metrics.loss;
}

ClassificationMetrics evaluate_model(const kiln::nn::Mlp& model,
                                     const kiln::data::ClassificationData& data,
                                     std::int64_t batch_size, kiln::StageContext& context) {
  const std::int64_t classes = model.spec().outputs;
  if (data.features != model.spec().inputs)
    throw kiln::DataError(fmt::format("the model takes {} features but the dataset has {}",
                                      model.spec().inputs, data.features));
  if (data.classes > classes)
    throw kiln::DataError(fmt::format("the dataset has label {} but the model knows {} classes",
                                      data.classes - 1, classes));
  kiln::evaluate::MetricsAccumulator accumulator(classes);
  std::vector<double> losses;
  for (std::int64_t start = 0; start < data.rows; start += batch_size) {
    const std::int64_t batch = std::min(batch_size, data.rows - start);
    const auto forward = model.forward(data.x.data() + start * data.features, batch);
    const float* logits = forward.logits().data();
    for (std::int64_t i = 0; i < batch; ++i) {
      const float* row = logits + i * classes;
      const std::int32_t label = data.y[static_cast<std::size_t>(start + i)];
      const double loss = kiln::nn::softmax_cross_entropy(row, &label, 1, classes, nullptr);
      const auto predicted = static_cast<std::int32_t>(std::max_element(row, row + classes) - row);
      accumulator.add(label, predicted, loss);
    }
    context.progress().update({.step = start + batch, .total_steps = data.rows, .note = "samples"});
  }
  return accumulator.finish();
}

// Records each gate check in `checks`; returns the failed ones as text.
std::vector<std::string> apply_gate(const nlohmann::json& gate,
                                    const ClassificationMetrics& metrics, nlohmann::json& checks) {
  std::vector<std::string> failures;
  for (const auto& [name, threshold_json] : gate.items()) {
    const bool higher_is_better = kGateMetrics.at(name);
    const double value = metric_value(metrics, name), threshold = threshold_json.get<double>();
    const bool passed = higher_is_better ? value >= threshold : value <= threshold;
    checks.push_back(
        {{"metric", name}, {"value", value}, {"threshold", threshold}, {"passed", passed}});
    if (!passed)
      failures.push_back(fmt::format("{} {:.4f} is not {} {}", name, value,
                                     higher_is_better ? ">=" : "<=", threshold));
  }
  return failures;
}

void run_evaluate(kiln::StageContext& context) {
  const kiln::Params& params = context.params();
  kiln::set_cpu_threads(static_cast<int>(params.get_int("threads")));
  const kiln::Artifact& model_artifact = context.input("model");
  const kiln::Artifact& dataset = context.input("dataset");
  const kiln::nn::Mlp model = kiln::nn::Mlp::load(model_artifact.path);
  const auto data = kiln::data::load_classification_data(dataset.path);
  const ClassificationMetrics metrics =
      evaluate_model(model, data, params.get_int("batch_size"), context);

  auto& run = context.run();
  run.log_metric("eval/accuracy", metrics.accuracy, 0);
  run.log_metric("eval/macro_f1", metrics.macro_f1, 0);
  run.log_metric("eval/loss", metrics.loss, 0);
  nlohmann::json checks = nlohmann::json::array();
  const std::vector<std::string> failures = apply_gate(params.get("gate"), metrics, checks);

  nlohmann::json report = metrics.to_json();
  report["class_names"] = params.get("class_names");
  report["dataset_id"] = dataset.content_id;
  report["model_sha256"] = model_artifact.content_id;
  report["gate"] = {{"passed", failures.empty()}, {"checks", checks}};
  kiln::write_file_atomic(context.work_dir() / "metrics.json", report.dump(2) + "\n");
  kiln::write_file_atomic(run.artifact_dir() / "evaluation" / (context.name() + ".json"),
                          report.dump(2) + "\n");
  const std::string summary = fmt::format("accuracy {:.4f}, macro-F1 {:.4f} on {} samples",
                                          metrics.accuracy, metrics.macro_f1, metrics.samples);
  kiln::log::info("evaluate: {} (dataset {})", summary, dataset.content_id.substr(0, 12));
  if (!failures.empty())
    throw kiln::GateError(fmt::format("gate refused the model: {}", fmt::join(failures, "; ")));
  report.erase("confusion");
  report["summary"] = summary + (checks.empty() ? "" : ", gate passed");
  context.emit({.name = "metrics", .kind = "metrics", .path = "metrics.json", .meta = report});
}

void check_evaluate(const kiln::Params& params) {
  if (params.get_int("batch_size") < 1) params.fail("batch_size", "must be at least 1");
  if (params.get_int("threads") < 0) params.fail("threads", "must be >= 0 (0: all cores)");
  const nlohmann::json& gate = params.get("gate");
  if (!gate.is_object()) params.fail("gate", "must be a mapping of metric to threshold");
  for (const auto& [name, threshold] : gate.items()) {
    if (!kGateMetrics.contains(name))
      params.fail("gate",
                  fmt::format("unknown metric '{}'; gates test accuracy, macro_f1, loss", name));
    if (!threshold.is_number())
      params.fail("gate", fmt::format("threshold of '{}' must be a number", name));
  }
}

void register_stages(kiln::StageRegistrar& registrar) {
  registrar.add(
      {.name = "evaluate",
       .summary = "Test accuracy, macro-F1 and confusion matrix, with a threshold gate",
       .params = kiln::ParamSchema()
                     .optional("gate", ParamType::Object, nlohmann::json::object(),
                               "minimum accuracy / macro_f1, maximum loss, e.g. {accuracy: 0.85}")
                     .optional("batch_size", ParamType::Int, 1000, "samples per forward pass")
                     .optional("threads", ParamType::Int, 0,
                               "CPU threads; 0: KILN_NUM_THREADS or all cores (GEMM results "
                               "depend on the thread count in the last bits)")
                     .optional("class_names", ParamType::StringList, nlohmann::json::array(),
                               "names of the classes, for reports"),
       .consumes = {"model", "dataset"},
       .produces = {"metrics"},
       .check = check_evaluate,
       .run = run_evaluate});
}

}  // namespace

KILN_PLUGIN("evaluate", "0.1.0", register_stages)
