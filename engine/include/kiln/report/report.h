// kiln's HTML reports (docs/cli.md, `kiln report`): one static page per run or per
// model, read from the registry (MLflow file store) without writing to it.
//
// A run report: loss and accuracy curves (train and eval), learning rate,
// throughput, step time and data wait over steps, any other metric logged at more
// than one step, the final value of every metric, the confusion matrix of each
// evaluation (artifacts/evaluation/<stage>.json) as a heat map, params, tags,
// dataset versions and the model versions the run trained or registered.
// A model report: its versions side by side (table and evaluation metrics plotted
// by version).
#pragma once

#include <filesystem>
#include <string>

namespace kiln::report {

// ConfigError for an unknown run or model.
std::string render_run_report(const std::filesystem::path& registry_root,
                              const std::string& run_id);
std::string render_model_report(const std::filesystem::path& registry_root,
                                const std::string& model);

// Renders the run's report and writes it to `path` atomically (the runner calls it
// at the end of a run, with path <run>/artifacts/report.html).
void write_run_report(const std::filesystem::path& registry_root, const std::string& run_id,
                      const std::filesystem::path& path);

}  // namespace kiln::report
