// Private to the report area: a run's metrics as line plots.
#pragma once

#include "report/run_data.h"

#include <string>
#include <vector>

namespace kiln::report::detail {

// Loss, accuracy, learning rate, throughput, step time and data wait (each a plot
// when the run has such a metric), then every other metric with more than one
// point. SVG markup, in that order.
std::vector<std::string> metric_plots(const RunData& run);

}  // namespace kiln::report::detail
