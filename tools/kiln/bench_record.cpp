#include "bench_record.h"

#include <kiln/cpu_threads.h>
#include <kiln/device.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/machine.h>
#include <kiln/plugin.h>
#include <kiln/version.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>

#include "build_commit.h"

namespace kiln::cli::bench {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string affinity_text() {
  const std::vector<int> cpus = affinity_cpus();
  return cpus.empty() ? "unknown" : fmt::format("{}", fmt::join(cpus, ","));
}

void add_gpu_fingerprint(std::map<std::string, std::string>& out) {
  const DeviceReport devices = probe_devices();
  std::vector<std::string> names;
  for (const CudaDevice& device : devices.devices) names.push_back(device.name);
  out["gpus"] = names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
  const CudaVersions versions = cuda_versions();
  if (!versions.cuda_built) return;
  out["cuda_driver"] = versions.driver.empty() ? "none" : versions.driver;
  out["cuda_runtime"] = versions.runtime;
  out["cudnn"] = versions.cudnn;
  out["nccl"] = versions.nccl;
}

Json measurement_json(const Measurement& m) {
  return {{"name", m.name},
          {"unit", m.unit},
          {"higher_is_better", m.higher_is_better},
          {"gates", m.gates},
          {"values", m.values},
          {"median", median(m.values)},
          {"spread", relative_spread(m.values)}};
}

template <typename T>
T field(const Json& object, const char* key, const std::string& where) {
  if (!object.is_object() || !object.contains(key))
    throw DataError(fmt::format("{}: '{}' is missing", where, key));
  try {
    return object.at(key).get<T>();
  } catch (const Json::exception&) {
    throw DataError(fmt::format("{}: '{}' has the wrong type", where, key));
  }
}

// > 1 when `now` is slower than `before`, as a ratio of times.
double slowdown_of(double before, double now, bool higher_is_better) {
  return higher_is_better ? before / now : now / before;
}

Verdict judge(const Compared& row, const CompareOptions& options) {
  if (!std::isfinite(row.slowdown) || row.slowdown <= 0) return Verdict::TooNoisy;
  if (row.gates && row.allowance >= options.max_allowance) return Verdict::TooNoisy;
  if (row.slowdown > 1 + row.allowance) return row.gates ? Verdict::Regressed : Verdict::Slower;
  if (row.slowdown < 1 / (1 + row.allowance)) return Verdict::Faster;
  return Verdict::Same;
}

constexpr std::pair<Verdict, const char*> kVerdictNames[] = {
    {Verdict::Faster, "faster"},      {Verdict::Same, "same"},
    {Verdict::Slower, "slower"},      {Verdict::Regressed, "REGRESSED"},
    {Verdict::TooNoisy, "too noisy"}, {Verdict::New, "new"},
    {Verdict::Missing, "missing"}};

}  // namespace

double median(std::vector<double> values) {
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  const std::size_t half = values.size() / 2;
  return values.size() % 2 == 1 ? values[half] : (values[half - 1] + values[half]) / 2;
}

std::string figure(double value) {
  if (!std::isfinite(value)) return "-";
  return std::abs(value) >= 1e4 ? fmt::format("{:.0f}", value) : fmt::format("{:.4g}", value);
}

double relative_spread(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const double middle = median(values);
  std::vector<double> deviations;
  for (const double value : values) deviations.push_back(std::abs(value - middle));
  return middle == 0 ? 0 : median(deviations) / std::abs(middle);
}

Json to_json(const BenchRecord& record) {
  Json measurements = Json::array();
  for (const Measurement& m : record.measurements) measurements.push_back(measurement_json(m));
  return {{"format", "kiln-bench 1"},     {"suites", record.suites},
          {"repeat", record.repeat},      {"fingerprint", record.fingerprint},
          {"measurements", measurements}, {"notes", record.notes}};
}

BenchRecord record_from_json(const Json& json, const std::string& where) {
  if (!json.is_object() || json.value("format", "") != "kiln-bench 1")
    throw DataError(fmt::format("{}: not a kiln bench record (format 'kiln-bench 1')", where));
  BenchRecord record;
  record.suites = field<std::vector<std::string>>(json, "suites", where);
  record.repeat = field<int>(json, "repeat", where);
  record.fingerprint = field<std::map<std::string, std::string>>(json, "fingerprint", where);
  record.notes = field<std::vector<std::string>>(json, "notes", where);
  for (const Json& item : field<Json>(json, "measurements", where)) {
    const std::string at = where + ": measurement";
    record.measurements.push_back(
        {field<std::string>(item, "name", at), field<std::string>(item, "unit", at),
         field<bool>(item, "higher_is_better", at), field<bool>(item, "gates", at),
         field<std::vector<double>>(item, "values", at)});
  }
  return record;
}

std::map<std::string, std::string> machine_fingerprint() {
  std::map<std::string, std::string> out;
  const std::string cpu = cpu_model();
  out["cpu"] = cpu.empty() ? "unknown" : cpu;
  out["cores"] = std::to_string(available_cores());
  out["affinity"] = affinity_text();
  out["cpu_isa"] = cpu_math_isa();
  out["onednn"] = onednn_version();
  out["compiler"] = KILN_BUILD_COMPILER;
  out["kiln"] = KILN_VERSION;
  out["commit"] = KILN_BUILD_COMMIT;
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const std::string reason = wait_policy_reason();
  out["omp_wait_policy"] = std::string(policy != nullptr ? policy : "unset") +
                           (reason.empty() ? "" : " (" + reason + ")");
  const std::string engine = engine_build();
  out["engine"] = engine.empty() ? "unknown" : engine;
  add_gpu_fingerprint(out);
  return out;
}

std::string metric_key(const std::string& name) {
  std::string key = name;
  for (char& c : key)
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("_.- /").find(c) == std::string_view::npos)
      c = '_';
  return key;
}

std::unique_ptr<registry::MlflowRun> store_record(
    registry::MlflowStore& store, const BenchRecord& record,
    const std::map<std::string, std::string>& params) {
  std::map<std::string, std::string> tags;
  for (const auto& [key, value] : record.fingerprint) tags["kiln.bench." + key] = value;
  const std::string experiment = store.ensure_experiment(kExperiment);
  auto run =
      store.start_run(experiment, fmt::format("bench {}", fmt::join(record.suites, " ")), tags);
  for (const auto& [key, value] : params) run->log_param(key, value);
  for (const Measurement& m : record.measurements) {
    run->log_metric(metric_key(m.name), median(m.values), 0);
    run->log_metric(metric_key(m.name) + ".spread", relative_spread(m.values), 0);
  }
  write_file_atomic(run->artifact_dir() / kRecordFile, to_json(record).dump(2) + "\n");
  run->end(registry::RunStatus::Finished);
  return run;
}

BenchRecord load_record(const registry::MlflowStore& store, const std::string& run_id) {
  const auto run = store.open_run(run_id);
  const fs::path file = run->directory() / "artifacts" / kRecordFile;
  if (!fs::exists(file))
    throw ConfigError(fmt::format("run {} is not a bench run ({} has no {})", run_id,
                                  run->directory().string(), kRecordFile));
  Json json;
  try {
    json = Json::parse(read_file(file));
  } catch (const Json::parse_error& error) {
    throw DataError(fmt::format("{}: not JSON: {}", file.string(), error.what()));
  }
  return record_from_json(json, file.string());
}

std::string latest_run(const registry::MlflowStore& store) {
  const auto experiment = store.find_experiment(kExperiment);
  if (!experiment) return "";
  auto runs = store.list_runs(*experiment);
  std::stable_sort(runs.begin(), runs.end(),
                   [](const auto& a, const auto& b) { return a.start_time_ms < b.start_time_ms; });
  for (auto run = runs.rbegin(); run != runs.rend(); ++run)
    if (run->status == registry::RunStatus::Finished &&
        fs::exists(store.open_run(run->run_id)->directory() / "artifacts" / kRecordFile))
      return run->run_id;
  return "";
}

const char* to_string(Verdict verdict) noexcept {
  for (const auto& [value, name] : kVerdictNames)
    if (value == verdict) return name;
  return "?";
}

std::vector<Compared> compare(const BenchRecord& before, const BenchRecord& now,
                              const CompareOptions& options) {
  std::map<std::string, const Measurement*> earlier;
  for (const Measurement& m : before.measurements) earlier[m.name] = &m;
  std::vector<Compared> rows;
  std::set<std::string> seen;
  for (const Measurement& m : now.measurements) {
    seen.insert(m.name);
    Compared row{m.name, m.unit, m.gates};
    row.now = median(m.values);
    const auto found = earlier.find(m.name);
    if (found == earlier.end()) {
      row.verdict = Verdict::New;
      rows.push_back(row);
      continue;
    }
    row.before = median(found->second->values);
    row.slowdown = slowdown_of(row.before, row.now, m.higher_is_better);
    row.allowance =
        std::max(options.threshold, options.noise_factor * (relative_spread(found->second->values) +
                                                            relative_spread(m.values)));
    row.verdict = judge(row, options);
    rows.push_back(row);
  }
  // A measurement of a suite run now that is gone: shown, not a regression.
  const std::set<std::string> suites(now.suites.begin(), now.suites.end());
  for (const Measurement& m : before.measurements)
    if (!seen.contains(m.name) && suites.contains(m.name.substr(0, m.name.find('/'))))
      rows.push_back(
          {m.name, m.unit, m.gates, median(m.values), std::nan(""), 0, 0, Verdict::Missing});
  return rows;
}

bool any_regression(const std::vector<Compared>& rows) {
  return std::any_of(rows.begin(), rows.end(),
                     [](const Compared& row) { return row.verdict == Verdict::Regressed; });
}

Json to_json(const std::vector<Compared>& rows) {
  Json out = Json::array();
  for (const Compared& row : rows)
    out.push_back({{"name", row.name},
                   {"unit", row.unit},
                   {"gates", row.gates},
                   {"before", row.before},
                   {"now", std::isfinite(row.now) ? Json(row.now) : Json()},
                   {"slowdown", row.slowdown},
                   {"allowance", row.allowance},
                   {"verdict", to_string(row.verdict)}});
  return out;
}

std::vector<Compared> comparison_from_json(const Json& json, const std::string& where) {
  if (!json.is_array()) throw DataError(fmt::format("{}: not a list of comparisons", where));
  std::vector<Compared> rows;
  for (const Json& item : json) {
    Compared row;
    row.name = field<std::string>(item, "name", where);
    row.unit = field<std::string>(item, "unit", where);
    row.gates = field<bool>(item, "gates", where);
    row.before = field<double>(item, "before", where);
    row.now =
        item.contains("now") && item["now"].is_number() ? item["now"].get<double>() : std::nan("");
    row.slowdown = field<double>(item, "slowdown", where);
    row.allowance = field<double>(item, "allowance", where);
    const std::string verdict = field<std::string>(item, "verdict", where);
    const auto* known = std::find_if(std::begin(kVerdictNames), std::end(kVerdictNames),
                                     [&](const auto& entry) { return verdict == entry.second; });
    if (known == std::end(kVerdictNames))
      throw DataError(fmt::format("{}: unknown verdict '{}'", where, verdict));
    row.verdict = known->first;
    rows.push_back(row);
  }
  return rows;
}

std::vector<std::string> fingerprint_changes(const BenchRecord& before, const BenchRecord& now) {
  std::vector<std::string> changes;
  for (const auto& [key, value] : now.fingerprint) {
    const auto found = before.fingerprint.find(key);
    const std::string old = found == before.fingerprint.end() ? "(none)" : found->second;
    if (old != value) changes.push_back(fmt::format("{}: {} -> {}", key, old, value));
  }
  return changes;
}

}  // namespace kiln::cli::bench
