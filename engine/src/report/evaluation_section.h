// Private to the report area: the sections of a run report drawn from its
// evaluation files (artifacts/evaluation/<stage>.json).
#pragma once

#include "report/run_data.h"

#include <kiln/report/html.h>
#include <kiln/report/plot.h>

#include <optional>

namespace kiln::report::detail {

// One section per evaluation: the scores, the gate's checks and the confusion
// matrix as a heat map.
void add_evaluations(HtmlPage& page, const RunData& run);

// The confusion matrix of an evaluation ("confusion": [true][predicted] counts) as
// a heat map colored by the share of each true class, with the counts written in
// and "class_names" on the axes; nothing when the file has no square matrix.
std::optional<HeatMap> confusion_heat_map(const nlohmann::json& evaluation,
                                          const std::string& title);

// A JSON scalar as a table cell: strings as they are, numbers in their shortest
// exact form, true/false as yes/no; anything else as compact JSON.
std::string json_text(const nlohmann::json& value);

}  // namespace kiln::report::detail
