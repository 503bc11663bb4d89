// The `evaluate` stage: runs the model over a test dataset version, logs
// eval/accuracy, eval/macro_f1 and eval/loss, writes the confusion matrix, and
// applies the gate (gate.h): absolute thresholds and "beat the champion". A refused
// model stops the pipeline with the gate-failure exit code, here (on_fail: stop) or
// in `register` after it recorded the version without moving the alias
// (on_fail: register).
#include "classification_metrics.h"
#include "gate.h"

#include <kiln/cpu_threads.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/plugin.h>
#include <kiln/train/predict.h>

#include <fmt/format.h>

#include <algorithm>

namespace {

using kiln::ParamType;
using kiln::evaluate::ClassificationMetrics;
using kiln::evaluate::GateOutcome;

ClassificationMetrics evaluate_model(const kiln::Artifact& model, const kiln::Artifact& dataset,
                                     std::int64_t batch_size, kiln::StageContext& context) {
  const kiln::train::Predictions predictions = kiln::train::predict_classes(
      model.path, dataset.path, batch_size, kiln::Device::cpu(),
      [&](std::int64_t done, std::int64_t total) {
        context.progress().update({.step = done, .total_steps = total, .note = "samples"});
      });
  kiln::evaluate::MetricsAccumulator accumulator(predictions.classes);
  for (std::size_t i = 0; i < predictions.labels.size(); ++i)
    accumulator.add(predictions.labels[i], predictions.predicted[i], predictions.losses[i]);
  return accumulator.finish();
}

std::string summary_of(const ClassificationMetrics& metrics, const GateOutcome& gate) {
  std::string summary = fmt::format("accuracy {:.4f}, macro-F1 {:.4f} on {} samples",
                                    metrics.accuracy, metrics.macro_f1, metrics.samples);
  if (gate.checks.empty()) return summary;
  if (gate.passed()) return summary + ", gate passed";
  return summary + fmt::format(", gate refused: {}", fmt::join(gate.failures, "; "));
}

void run_evaluate(kiln::StageContext& context) {
  const kiln::Params& params = context.params();
  kiln::set_cpu_threads(static_cast<int>(params.get_int("threads")));
  const kiln::Artifact& model_artifact = context.input("model");
  const kiln::Artifact& dataset = context.input("dataset");
  const ClassificationMetrics metrics =
      evaluate_model(model_artifact, dataset, params.get_int("batch_size"), context);

  auto& run = context.run();
  run.log_metric("eval/accuracy", metrics.accuracy, 0);
  run.log_metric("eval/macro_f1", metrics.macro_f1, 0);
  run.log_metric("eval/loss", metrics.loss, 0);
  const GateOutcome gate =
      kiln::evaluate::apply_gate(params.get("gate"), params.get("beat_champion"), metrics,
                                 dataset.content_id, context.registry_root());

  nlohmann::json report = metrics.to_json();
  report["class_names"] = params.get("class_names");
  report["dataset_id"] = dataset.content_id;
  report["model_sha256"] = model_artifact.content_id;
  report["gate"] = gate.to_json();
  kiln::write_file_atomic(context.work_dir() / "metrics.json", report.dump(2) + "\n");
  kiln::write_file_atomic(run.artifact_dir() / "evaluation" / (context.name() + ".json"),
                          report.dump(2) + "\n");
  if (!gate.checks.empty())
    run.set_tag("kiln.gate." + context.name(), gate.passed() ? "passed" : "refused");
  const std::string summary = summary_of(metrics, gate);
  kiln::log::info("evaluate: {} (dataset {})", summary, dataset.content_id.substr(0, 12));
  const std::string reasons = fmt::format("{}", fmt::join(gate.failures, "; "));
  if (!gate.passed() && params.get_string("on_fail") == "stop")
    throw kiln::GateError("gate refused the model: " + reasons);
  if (!gate.passed())
    kiln::log::warn(
        "evaluate: gate refused the model ({}); on_fail: register passes it on to "
        "be registered without moving its alias",
        reasons);
  report.erase("confusion");
  report["summary"] = summary;
  context.emit({.name = "metrics", .kind = "metrics", .path = "metrics.json", .meta = report});
}

void check_evaluate(const kiln::Params& params) {
  if (params.get_int("batch_size") < 1) params.fail("batch_size", "must be at least 1");
  if (params.get_int("threads") < 0) params.fail("threads", "must be >= 0 (0: all cores)");
  kiln::evaluate::check_gate_params(params);
}

void register_stages(kiln::StageRegistrar& registrar) {
  registrar.add(
      {.name = "evaluate",
       .summary =
           "Test accuracy, macro-F1 and confusion matrix, with a gate (thresholds, champion)",
       .params = kiln::ParamSchema()
                     .optional("gate", ParamType::Object, nlohmann::json::object(),
                               "minimum accuracy / macro_f1, maximum loss, e.g. {accuracy: 0.85}")
                     .optional("beat_champion", ParamType::Object, nlohmann::json::object(),
                               "{model: NAME, alias: champion, metric: accuracy, delta: 0.0}: "
                               "the metric must beat that alias's version by >= delta, compared "
                               "only when both were tested on the same dataset version; {}: off")
                     .choice("on_fail", {"stop", "register"},
                             "a refused model: stop fails here (exit 4); register passes the "
                             "metrics on marked refused, so `register` records the version "
                             "without moving its alias, then fails (exit 4); use it only with "
                             "a register stage downstream")
                     .optional("batch_size", ParamType::Int, 1000, "samples per forward pass")
                     .optional("threads", ParamType::Int, 0,
                               "CPU threads; 0: KILN_NUM_THREADS or all cores (GEMM results "
                               "depend on the thread count in the last bits)")
                     .optional("class_names", ParamType::StringList, nlohmann::json::array(),
                               "names of the classes, for reports"),
       .consumes = {"model", "dataset"},
       .produces = {"metrics"},
       .metrics = {"eval/accuracy", "eval/macro_f1", "eval/loss"},
       .check = check_evaluate,
       .run = run_evaluate});
}

}  // namespace

KILN_PLUGIN("evaluate", "0.1.0", register_stages)
