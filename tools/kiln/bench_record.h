// What `kiln bench` measured, how it is kept in the registry, and how two bench
// runs compare (docs/cli.md, "kiln bench").
//
// A bench run is an MLflow run in the experiment "bench". Its artifacts/bench.json
// holds every measurement with one value per repeat, the machine fingerprint and
// the suites' notes; its metrics are each measurement's median (and
// "<name>.spread"), for MLflow's UI; its tags are the fingerprint (kiln.bench.*).
#pragma once

#include <kiln/registry/mlflow_store.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace kiln::cli::bench {

// One figure, one value per repeat.
struct Measurement {
  std::string name;  // "<suite>/...": "ops/BM_AdamWStep", "train/mlp/samples_per_s"
  std::string unit;  // "us", "samples/s", "x"
  bool higher_is_better = false;
  // false for what is not kiln's own speed (the peer's figures, kiln/peer ratios):
  // compared and shown, never a regression.
  bool gates = true;
  std::vector<double> values;
};

double median(std::vector<double> values);
// A figure for tables: four significant digits, no exponent ("83381", "1.371", "-").
std::string figure(double value);
// The median absolute deviation of the repeats over their median (0 for one value):
// a spread that one disturbed repeat does not inflate.
double relative_spread(const std::vector<double>& values);

struct BenchRecord {
  std::vector<std::string> suites;
  int repeat = 0;
  std::map<std::string, std::string> fingerprint;  // "cpu", "cores", "commit", ...
  std::vector<Measurement> measurements;
  std::vector<std::string> notes;  // what was skipped, and why
};

nlohmann::json to_json(const BenchRecord& record);
// DataError naming `where` for a file that is not a bench record.
BenchRecord record_from_json(const nlohmann::json& json, const std::string& where);

// The machine this process runs on: CPU model, cores and affinity, the math ISA,
// GPUs and driver, library versions, compiler, kiln's commit and engine build.
std::map<std::string, std::string> machine_fingerprint();

// A metric key MLflow accepts for a measurement name: characters outside
// [A-Za-z0-9_.- /] become '_'.
std::string metric_key(const std::string& name);

inline constexpr const char* kExperiment = "bench";
inline constexpr const char* kRecordFile = "bench.json";
inline constexpr const char* kComparisonFile = "comparison.json";

// Writes the record as a new FINISHED run of the "bench" experiment; returns it.
std::unique_ptr<registry::MlflowRun> store_record(registry::MlflowStore& store,
                                                  const BenchRecord& record,
                                                  const std::map<std::string, std::string>& params);
// The record of a bench run; ConfigError when the run has none.
BenchRecord load_record(const registry::MlflowStore& store, const std::string& run_id);
// The newest finished bench run, or "" when there is none.
std::string latest_run(const registry::MlflowStore& store);

// --- comparison --------------------------------------------------------------

enum class Verdict { Faster, Same, Slower, Regressed, TooNoisy, New, Missing };
const char* to_string(Verdict verdict) noexcept;

struct CompareOptions {
  // A gating measurement regresses when it is slower by more than
  // max(threshold, noise_factor * (spread before + spread now)). With normal noise
  // of deviation s, a spread is about 0.67 s, and the difference of two medians of 5
  // repeats has a deviation of about 0.8 s: the default allows about 5 of those.
  double threshold = 0.2;
  double noise_factor = 3.0;
  // Where that allowance reaches this, the measurement could not see a 2x slowdown:
  // it is reported too noisy to judge instead (more repeats help).
  double max_allowance = 1.0;
};

struct Compared {
  std::string name, unit;
  bool gates = true;
  double before = 0, now = 0;  // medians
  double slowdown = 0;         // > 1: slower now (time ratio, whatever the unit's direction)
  double allowance = 0;        // the slowdown tolerated as noise, as a fraction
  Verdict verdict = Verdict::Same;
};

std::vector<Compared> compare(const BenchRecord& before, const BenchRecord& now,
                              const CompareOptions& options);
bool any_regression(const std::vector<Compared>& rows);
nlohmann::json to_json(const std::vector<Compared>& rows);
std::vector<Compared> comparison_from_json(const nlohmann::json& json, const std::string& where);

// The fingerprint entries that differ, "cpu: A -> B" each: a comparison across
// machines or builds says so.
std::vector<std::string> fingerprint_changes(const BenchRecord& before, const BenchRecord& now);

// The HTML page of a bench run (`kiln report RUN`): its fingerprint, measurements and
// notes, and the comparison it made, if any (artifacts/comparison.json).
std::string render_report(const registry::MlflowStore& store, const std::string& run_id);

}  // namespace kiln::cli::bench
