// The sweep report: summary, the three figures (sweep_plots.cpp), and a table of
// all trials.
#include "report/run_data.h"
#include "report/sweep_plots.h"

#include <kiln/clock.h>
#include <kiln/report/html.h>
#include <kiln/report/sweep_report.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace kiln::report {
namespace detail {

using sweep::Trial;
using sweep::TrialState;

namespace {

SweepParameter parameter_of(const std::string& name, const sweep::Distribution& distribution) {
  SweepParameter parameter{name, name};
  if (const auto* f = std::get_if<sweep::FloatDistribution>(&distribution)) {
    parameter.log = f->log;
    parameter.low = f->low;
    parameter.high = f->high;
  } else if (const auto* i = std::get_if<sweep::IntDistribution>(&distribution)) {
    parameter.kind = SweepParameter::Kind::Int;
    parameter.log = i->log;
    parameter.low = static_cast<double>(i->low);
    parameter.high = static_cast<double>(i->high);
  } else {
    parameter.kind = SweepParameter::Kind::Categorical;
  }
  return parameter;
}

// Widens `parameter` to take in another trial's distribution of it.
void merge(SweepParameter& parameter, const sweep::Distribution& distribution) {
  if (const auto* categorical = std::get_if<sweep::CategoricalDistribution>(&distribution)) {
    for (const auto& choice : categorical->choices)
      if (std::find(parameter.choices.begin(), parameter.choices.end(), choice) ==
          parameter.choices.end())
        parameter.choices.push_back(choice);
    return;
  }
  const SweepParameter other = parameter_of(parameter.name, distribution);
  if (other.kind != parameter.kind) return;  // a mixed parameter keeps its first kind's axis
  parameter.low = std::min(parameter.low, other.low);
  parameter.high = std::max(parameter.high, other.high);
}

}  // namespace

std::vector<SweepParameter> sweep_parameters(const SweepReportInput& input) {
  std::vector<SweepParameter> parameters;
  std::map<std::string, std::size_t> index;
  for (const Trial& trial : input.study.trials) {
    for (const auto& [name, distribution] : trial.distributions) {
      auto [it, added] = index.emplace(name, parameters.size());
      if (added) {
        parameters.push_back(parameter_of(name, distribution));
        const auto display = input.display_names.find(name);
        if (display != input.display_names.end()) parameters.back().display = display->second;
      }
      merge(parameters[it->second], distribution);
    }
  }
  return parameters;
}

nlohmann::json external_value(const Trial& trial, const SweepParameter& parameter) {
  const auto value = trial.params.find(parameter.name);
  const auto distribution = trial.distributions.find(parameter.name);
  if (value == trial.params.end() || distribution == trial.distributions.end()) return nullptr;
  return sweep::to_external(distribution->second, value->second);
}

std::string number_text(double value) {
  return std::isfinite(value) ? fmt::format("{:.6g}", value) : "not finite";
}

std::string value_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return number_text(value.get<double>());
  return value.dump();
}

}  // namespace detail

namespace {

using detail::number_text;
using detail::SweepParameter;
using detail::value_text;
using sweep::Trial;
using sweep::TrialState;
using Rows = std::vector<std::vector<std::string>>;

const TrialFacts* facts_of(const SweepReportInput& input, const Trial& trial) {
  const auto it = input.facts.find(trial.number);
  return it == input.facts.end() ? nullptr : &it->second;
}

std::int64_t epochs_of(const SweepReportInput& input, const Trial& trial) {
  const TrialFacts* facts = facts_of(input, trial);
  if (facts && facts->epochs) return *facts->epochs;
  return static_cast<std::int64_t>(trial.intermediate.size());
}

std::string state_name(TrialState state) {
  switch (state) {
    case TrialState::Complete:
      return "complete";
    case TrialState::Pruned:
      return "pruned";
    case TrialState::Fail:
      return "failed";
    case TrialState::Running:
      return "running";
    case TrialState::Waiting:
      return "waiting";
  }
  return "unknown";
}

void add_summary(HtmlPage& page, const SweepReportInput& input,
                 const std::vector<SweepParameter>& parameters) {
  const sweep::Study& study = input.study;
  page.section("Summary");
  std::map<TrialState, int> counts;
  std::int64_t epochs = 0;
  for (const Trial& trial : study.trials) {
    ++counts[trial.state];
    epochs += epochs_of(input, trial);
  }
  const Trial* best = study.best_trial();
  Rows rows = {{"objective", fmt::format("{} ({})", input.objective, to_string(study.direction))},
               {"trials", std::to_string(study.trials.size())}};
  for (const TrialState state : {TrialState::Complete, TrialState::Pruned, TrialState::Fail,
                                 TrialState::Running, TrialState::Waiting})
    rows.push_back({state_name(state), std::to_string(counts[state])});
  rows.push_back({"best trial", best ? std::to_string(best->number) : "none has completed"});
  if (best) rows.push_back({"best " + input.objective, number_text(*best->value)});
  rows.push_back({"epochs trained", std::to_string(epochs)});
  page.table({}, rows);
  if (!best) return;
  Rows best_parameters;
  for (const SweepParameter& parameter : parameters)
    best_parameters.push_back(
        {parameter.display, value_text(detail::external_value(*best, parameter))});
  page.paragraph(fmt::format("The parameters of trial {}, the best:", best->number));
  page.table({"parameter", "value"}, best_parameters);
}

void add_figures(HtmlPage& page, const SweepReportInput& input,
                 const std::vector<SweepParameter>& parameters) {
  page.section("Objective");
  page.figures({detail::objective_by_trial_plot(input)});

  page.section("Parameters");
  const std::string parallel = detail::parameters_plot(input, parameters);
  if (parallel.empty())
    page.paragraph("No trial has completed with a finite objective yet.");
  else
    page.figures({parallel});

  page.section("Learning curves");
  const std::string curves = detail::intermediate_plot(input);
  if (curves.empty())
    page.paragraph("No trial has reported an intermediate value yet.");
  else
    page.figures({curves});
}

// A pruned trial has no objective; its last reported value says how far it got.
std::string objective_cell(const Trial& trial) {
  if (trial.value) return number_text(*trial.value);
  if (trial.state != TrialState::Pruned || trial.intermediate.empty()) return "";
  const auto& [epoch, value] = *trial.intermediate.rbegin();
  return fmt::format("{} (last reported, epoch {})", number_text(value), epoch);
}

void add_trials(HtmlPage& page, const SweepReportInput& input,
                const std::vector<SweepParameter>& parameters) {
  page.section("Trials");
  std::vector<std::string> header = {"trial", "state", input.objective};
  for (const SweepParameter& parameter : parameters) header.push_back(parameter.display);
  for (const char* column : {"epochs", "wall time", "MLflow run"}) header.push_back(column);
  const Trial* best = input.study.best_trial();
  Rows rows;
  for (const Trial& trial : input.study.trials) {
    std::vector<std::string> row = {std::to_string(trial.number),
                                    state_name(trial.state) + (&trial == best ? " (best)" : ""),
                                    objective_cell(trial)};
    for (const SweepParameter& parameter : parameters) {
      const nlohmann::json value = detail::external_value(trial, parameter);
      row.push_back(value.is_null() ? "" : value_text(value));
    }
    const TrialFacts* facts = facts_of(input, trial);
    row.push_back(std::to_string(epochs_of(input, trial)));
    const bool timed = facts && facts->wall_seconds && std::isfinite(*facts->wall_seconds);
    row.push_back(timed ? detail::duration_text(std::llround(*facts->wall_seconds * 1000)) : "");
    row.push_back(facts ? facts->run_id : "");
    rows.push_back(std::move(row));
  }
  if (rows.empty())
    page.paragraph("The study has no trials yet.");
  else
    page.table(header, rows);
}

}  // namespace

std::string render_sweep_report(const SweepReportInput& input) {
  const std::string name = input.sweep_name.empty() ? input.study.name : input.sweep_name;
  HtmlPage page("Sweep " + name,
                fmt::format("kiln sweep report, study '{}', {} {}, made {}", input.study.name,
                            to_string(input.study.direction), input.objective, iso8601_utc()));
  const std::vector<SweepParameter> parameters = detail::sweep_parameters(input);
  add_summary(page, input, parameters);
  add_figures(page, input, parameters);
  add_trials(page, input, parameters);
  return page.html();
}

}  // namespace kiln::report
