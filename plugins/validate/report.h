// What the validate and drift stages share: choosing their dataset inputs and
// publishing a JSON report to the run and as an output.
#pragma once

#include <kiln/stage.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace kiln::validate {

// The dataset input produced by stage `producer`; ConfigError naming the
// parameter `param` if no input comes from it.
const Artifact& dataset_from(const StageContext& context, const std::string& producer,
                             std::string_view param);
// The one dataset input not produced by `other` ("" for none); StageError if there
// is not exactly one.
const Artifact& dataset_besides(const StageContext& context, const std::string& other);

// Logs each number as metric "<stage name>/<key>" and writes `report` to the run's
// artifacts as "<stage name>-<file>" (kept even when the stage then fails) and to
// the work directory as `file`.
void publish(StageContext& context, const std::string& file, const nlohmann::json& report,
             const std::map<std::string, double>& metrics);

// Emits the checked dataset again, so that a stage needing this one gets it only
// after the checks passed, and the report under `report_name`.
void emit_outputs(StageContext& context, const Artifact& dataset, const std::string& file,
                  const std::string& kind, nlohmann::json meta);

}  // namespace kiln::validate
