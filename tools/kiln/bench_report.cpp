// The page `kiln report` writes for a bench run (bench_record.h).
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/report/html.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "bench_record.h"

namespace kiln::cli::bench {
namespace {

namespace fs = std::filesystem;

void add_comparison(report::HtmlPage& page, const fs::path& file) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::parse_error& error) {
    throw DataError(fmt::format("{}: not JSON: {}", file.string(), error.what()));
  }
  const std::string base = json.value("compared_to", "?");
  const auto rows = comparison_from_json(json.value("rows", nlohmann::json()), file.string());
  page.section("Compared with bench run " + base);
  page.paragraph(fmt::format(
      "Slowdown is time now over time then (for rates, then over now). A measurement kiln "
      "gates on regresses when its slowdown passes the allowance: the threshold ({:.0f}%), "
      "widened to {:g}x the summed spreads (median absolute deviations over the median) of "
      "the two runs' repeats.",
      100 * json.value("threshold", 0.0), json.value("noise_factor", 0.0)));
  std::vector<std::vector<std::string>> cells;
  for (const Compared& row : rows) {
    const bool both = row.verdict != Verdict::New && row.verdict != Verdict::Missing;
    cells.push_back({row.name, row.verdict == Verdict::New ? "-" : figure(row.before),
                     figure(row.now), row.unit, both ? fmt::format("{:.2f}x", row.slowdown) : "-",
                     both ? fmt::format("{:.2f}x", 1 + row.allowance) : "-",
                     std::string(to_string(row.verdict)) + (row.gates ? "" : " (not gated)")});
  }
  page.table({"measurement", "then", "now", "unit", "slowdown", "allowed", "verdict"}, cells);
}

}  // namespace

std::string render_report(const registry::MlflowStore& store, const std::string& run_id) {
  const BenchRecord record = load_record(store, run_id);
  const auto run = store.open_run(run_id);
  report::HtmlPage page(
      "kiln bench run " + run_id,
      fmt::format("suites {}, {} repeat(s)", fmt::join(record.suites, " "), record.repeat));
  page.section("Machine");
  std::vector<std::vector<std::string>> machine;
  for (const auto& [key, value] : record.fingerprint) machine.push_back({key, value});
  page.table({}, machine);
  page.section("Measurements");
  std::vector<std::vector<std::string>> cells;
  for (const Measurement& m : record.measurements) {
    std::string values;
    for (const double v : m.values) values += (values.empty() ? "" : " ") + figure(v);
    cells.push_back({m.name, figure(median(m.values)), m.unit,
                     fmt::format("{:.1f}%", 100 * relative_spread(m.values)),
                     m.higher_is_better ? "higher" : "lower", values});
  }
  page.table({"measurement", "median", "unit", "spread", "better", "repeats"}, cells);
  for (const std::string& note : record.notes) page.paragraph(note);
  const fs::path comparison = run->directory() / "artifacts" / kComparisonFile;
  if (fs::exists(comparison)) add_comparison(page, comparison);
  return page.html();
}

}  // namespace kiln::cli::bench
