#include "report.h"

#include <kiln/error.h>
#include <kiln/fs.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kiln::validate {

namespace {

std::vector<std::string> dataset_producers(const StageContext& context) {
  std::vector<std::string> producers;
  for (const Artifact& input : context.inputs())
    if (input.kind == "dataset") producers.push_back(input.producer);
  return producers;
}

}  // namespace

const Artifact& dataset_from(const StageContext& context, const std::string& producer,
                             std::string_view param) {
  for (const Artifact& input : context.inputs())
    if (input.kind == "dataset" && input.producer == producer) return input;
  context.params().fail(param, fmt::format("'{}' is not a stage in `needs` that produces a "
                                           "dataset (datasets come from: {})",
                                           producer, fmt::join(dataset_producers(context), ", ")));
}

const Artifact& dataset_besides(const StageContext& context, const std::string& other) {
  const Artifact* found = nullptr;
  for (const Artifact& input : context.inputs()) {
    if (input.kind != "dataset" || (!other.empty() && input.producer == other)) continue;
    if (found != nullptr)
      throw StageError(fmt::format("stage '{}' needs one dataset to check, got several (from {})",
                                   context.name(), fmt::join(dataset_producers(context), ", ")));
    found = &input;
  }
  if (found == nullptr)
    throw StageError(
        fmt::format("stage '{}' needs a dataset to check: list its producer in "
                    "`needs`",
                    context.name()));
  return *found;
}

void publish(StageContext& context, const std::string& file, const nlohmann::json& report,
             const std::map<std::string, double>& metrics) {
  for (const auto& [key, value] : metrics)
    context.run().log_metric(fmt::format("{}/{}", context.name(), key), value, 0);
  const std::string text = report.dump(2) + "\n";
  write_file_atomic(context.run().artifact_dir() / fmt::format("{}-{}", context.name(), file),
                    text);
  write_file_atomic(context.work_dir() / file, text);
}

void emit_outputs(StageContext& context, const Artifact& dataset, const std::string& file,
                  const std::string& kind, nlohmann::json meta) {
  Artifact passed = dataset;
  passed.producer.clear();
  context.emit(std::move(passed));
  context.emit({.name = "report", .kind = kind, .path = file, .meta = std::move(meta)});
}

}  // namespace kiln::validate
