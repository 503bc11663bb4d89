// Private to the report area: the sweep report's view of a study (its parameters as
// columns and axes, trials' values as text) and its three figures.
#pragma once

#include <kiln/report/sweep_report.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace kiln::report::detail {

// A parameter of the sweep as the page shows it. Trials may carry different
// distributions for the same name (Optuna allows it): the numeric bounds are their
// union, the choices every choice seen, in order of first appearance.
struct SweepParameter {
  std::string name;     // in the study, e.g. "train.with.lr"
  std::string display;  // on the page
  enum class Kind { Float, Int, Categorical } kind = Kind::Float;
  bool log = false;
  double low = 0, high = 0;
  std::vector<nlohmann::json> choices;
};

std::vector<SweepParameter> sweep_parameters(const SweepReportInput& input);

// The trial's external value of `parameter`, or null when it did not sample it.
nlohmann::json external_value(const sweep::Trial& trial, const SweepParameter& parameter);
// An external value in full: a string choice without quotes (a JSON-text choice
// shows its JSON), a float with six significant digits.
std::string value_text(const nlohmann::json& value);
std::string number_text(double value);  // six significant digits, "not finite" else

// Figures, as <svg> markup.
std::string objective_by_trial_plot(const SweepReportInput& input);
// Empty when no trial completed with a finite objective.
std::string parameters_plot(const SweepReportInput& input,
                            const std::vector<SweepParameter>& parameters);
// Empty when no trial reported an intermediate value.
std::string intermediate_plot(const SweepReportInput& input);

}  // namespace kiln::report::detail
