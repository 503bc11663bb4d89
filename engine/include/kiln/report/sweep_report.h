// The report of a hyperparameter sweep (issue 12): one static page, like the run
// report (report.h), drawn from the sweep's study (kiln/sweep/study.h) and what the
// sweep knows of each trial's run.
//
// Sections: a summary (trials by state, the best trial with its objective and
// parameters, epochs trained); the objective by trial (complete trials, pruned
// trials at their last reported value, the running best); parallel coordinates of
// the parameters and the objective, one line per complete trial colored by its
// objective; every trial's objective by epoch, pruned trials dashed with an X where
// they stopped and the best trial highlighted; and a table of all trials.
#pragma once

#include <kiln/sweep/study.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace kiln::report {

// What the sweep recorded about a trial beside the study.
struct TrialFacts {
  std::optional<double> wall_seconds;
  // Epochs the trial trained; when unknown, the report counts its intermediate
  // values (one per epoch, as the sweep reports them).
  std::optional<std::int64_t> epochs;
  std::string run_id;  // the trial's MLflow run; empty if it has none
};

struct SweepReportInput {
  std::string sweep_name;  // the page's title; the study's name when empty
  // The study: trials, their states, parameters (internal values, shown through
  // kiln::sweep::to_external), distributions, objectives and intermediate values.
  // Its direction says which objective is better.
  sweep::Study study;
  std::string objective;  // the metric the sweep optimizes, e.g. "eval/accuracy"
  // A parameter's name on the page, by its name in the study ("train.with.lr" ->
  // "learning rate"); a parameter not listed shows its study name.
  std::map<std::string, std::string> display_names;
  std::map<int, TrialFacts> facts;  // by trial number; any trial may be missing
};

// The whole HTML document.
std::string render_sweep_report(const SweepReportInput& input);

}  // namespace kiln::report
