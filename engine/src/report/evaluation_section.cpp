#include "report/evaluation_section.h"

#include <kiln/registry/browse.h>
#include <kiln/report/plot.h>

#include <fmt/format.h>

#include <cmath>
#include <set>

namespace kiln::report::detail {
namespace {

bool square_counts(const nlohmann::json& matrix) {
  if (!matrix.is_array() || matrix.empty()) return false;
  for (const auto& row : matrix) {
    if (!row.is_array() || row.size() != matrix.size()) return false;
    for (const auto& count : row)
      if (!count.is_number()) return false;
  }
  return true;
}

std::vector<std::string> class_names(const nlohmann::json& evaluation, std::size_t classes) {
  const auto names = evaluation.find("class_names");
  std::vector<std::string> labels;
  if (names != evaluation.end() && names->is_array() && names->size() == classes)
    for (const auto& name : *names) labels.push_back(json_text(name));
  else
    for (std::size_t k = 0; k < classes; ++k) labels.push_back(std::to_string(k));
  return labels;
}

std::string scores_text(const nlohmann::json& evaluation) {
  std::vector<std::string> scores;
  for (const char* name : {"accuracy", "macro_f1", "loss"})
    if (const auto it = evaluation.find(name); it != evaluation.end())
      scores.push_back(fmt::format("{} {}", name, json_text(*it)));
  std::string text = fmt::format("{}", fmt::join(scores, ", "));
  if (const auto it = evaluation.find("samples"); it != evaluation.end())
    text += fmt::format(" on {} samples", json_text(*it));
  if (const auto it = evaluation.find("dataset_id"); it != evaluation.end())
    text += fmt::format(" of dataset version {}", json_text(*it));
  return text;
}

// The gate's checks, one row each, with the union of their fields as columns: the
// fields differ between threshold and champion checks.
void add_gate(HtmlPage& page, const nlohmann::json& evaluation) {
  const auto gate = evaluation.find("gate");
  if (gate == evaluation.end() || !gate->is_object()) return;
  const bool passed = gate->value("passed", false);
  const auto checks = gate->find("checks");
  if (checks == gate->end() || !checks->is_array() || checks->empty()) {
    page.paragraph("Gate: no checks configured.");
    return;
  }
  page.paragraph(passed ? "Gate: passed." : "Gate: refused the model.");
  std::vector<std::string> columns;
  std::set<std::string> seen;
  for (const auto& check : *checks)
    if (check.is_object())
      for (const auto& [field, value] : check.items())
        if (seen.insert(field).second) columns.push_back(field);
  std::vector<std::vector<std::string>> rows;
  for (const auto& check : *checks) {
    std::vector<std::string> row;
    for (const std::string& field : columns)
      row.push_back(check.is_object() && check.contains(field) ? json_text(check[field]) : "");
    rows.push_back(std::move(row));
  }
  page.table(columns, rows);
}

}  // namespace

std::string json_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_number_float()) return registry::metric_text(value.get<double>());
  if (value.is_null()) return "";
  return value.dump();
}

std::optional<HeatMap> confusion_heat_map(const nlohmann::json& evaluation,
                                          const std::string& title) {
  const auto matrix = evaluation.find("confusion");
  if (matrix == evaluation.end() || !square_counts(*matrix)) return std::nullopt;
  const std::size_t classes = matrix->size();
  HeatMap map{title, "true class", "predicted class", class_names(evaluation, classes), {}, {}, {}};
  map.columns = map.rows;
  for (const auto& row : *matrix) {
    double total = 0;
    for (const auto& count : row) total += count.get<double>();
    std::vector<double> shares;
    std::vector<std::string> counts;
    for (const auto& count : row) {
      shares.push_back(total > 0 ? count.get<double>() / total : std::nan(""));
      counts.push_back(json_text(count));
    }
    map.values.push_back(std::move(shares));
    map.cell_text.push_back(std::move(counts));
  }
  return map;
}

void add_evaluations(HtmlPage& page, const RunData& run) {
  for (const Evaluation& evaluation : run.evaluations) {
    page.section("Evaluation: " + evaluation.stage);
    if (!evaluation.error.empty()) {
      page.paragraph("Could not read the evaluation: " + evaluation.error);
      continue;
    }
    page.paragraph(scores_text(evaluation.data));
    add_gate(page, evaluation.data);
    const auto map =
        confusion_heat_map(evaluation.data, fmt::format("Confusion matrix ({})", evaluation.stage));
    if (!map) {
      page.paragraph("No confusion matrix in this evaluation.");
      continue;
    }
    page.paragraph("Cells count test samples; their color is the share of the true class (row).");
    page.figures({svg_heat_map(*map)});
  }
}

}  // namespace kiln::report::detail
