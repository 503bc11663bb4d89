// drift_report: samples rows of both versions into feature columns, then per
// feature sorts both columns once and reads PSI bin counts and the KS distance off
// the sorted values. Categorical CSV columns are compared by category name.
#include <kiln/data/array.h>
#include <kiln/data/dataset.h>
#include <kiln/data/drift.h>
#include <kiln/data/reader.h>
#include <kiln/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace kiln::data {
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kAutoElementLimit = 4096;
// Empty bins get this share, so that PSI stays finite (the common smoothing).
constexpr double kMinShare = 1e-4;
constexpr std::size_t kTopFeatures = 20;

const std::vector<std::string> kSummaryNames = {"mean", "std", "min", "max", "zero_fraction"};

using Columns = std::vector<std::vector<float>>;  // feature -> values

// NaN has no place in a sorted column (validation reports it); it is left out.
void push_value(std::vector<float>& column, double value) {
  if (!std::isnan(value)) column.push_back(static_cast<float>(value));
}

void summarize(const std::uint8_t* row, DType dtype, std::int64_t elements, Columns& columns) {
  double sum = 0, squares = 0, low = INFINITY, high = -INFINITY;
  std::int64_t zeros = 0;
  for (std::int64_t i = 0; i < elements; ++i) {
    const double value = element_as_double(row, dtype, i);
    sum += value;
    squares += value * value;
    low = std::min(low, value);
    high = std::max(high, value);
    zeros += value == 0 ? 1 : 0;
  }
  const double n = static_cast<double>(std::max<std::int64_t>(elements, 1));
  const double mean = sum / n;
  const double values[] = {mean, std::sqrt(std::max(squares / n - mean * mean, 0.0)), low, high,
                           static_cast<double>(zeros) / n};
  for (std::size_t f = 0; f < columns.size(); ++f) push_value(columns[f], values[f]);
}

// Feature columns of up to max_rows rows of `array`, evenly strided.
Columns sample_columns(const DatasetReader& reader, const std::string& array, bool summary,
                       std::int64_t max_rows) {
  const ArrayInfo& info = reader.array(array);
  const std::int64_t rows = info.shape.empty() ? 0 : info.shape.front();
  const std::int64_t elements =
      reader.row_bytes(array) / static_cast<std::int64_t>(size_of(info.dtype));
  const std::int64_t taken = std::min(rows, std::max<std::int64_t>(max_rows, 1));
  Columns columns(summary ? kSummaryNames.size() : static_cast<std::size_t>(elements));
  for (auto& column : columns) column.reserve(static_cast<std::size_t>(taken));
  std::vector<std::uint8_t> row(static_cast<std::size_t>(reader.row_bytes(array)));
  for (std::int64_t k = 0; k < taken; ++k) {
    reader.read_rows(array, k * rows / taken, 1, row.data());
    if (summary) {
      summarize(row.data(), info.dtype, elements, columns);
      continue;
    }
    for (std::int64_t e = 0; e < elements; ++e)
      push_value(columns[static_cast<std::size_t>(e)],
                 element_as_double(row.data(), info.dtype, e));
  }
  return columns;
}

// Share of `sorted` at or below `edge`.
double share_at_most(const std::vector<float>& sorted, float edge) {
  return static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(), edge) -
                             sorted.begin()) /
         static_cast<double>(sorted.size());
}

double psi(const std::vector<float>& reference, const std::vector<float>& current, int bins) {
  std::vector<float> edges;
  for (int k = 1; k < bins; ++k)
    edges.push_back(reference[static_cast<std::size_t>(k * (reference.size() - 1) / bins)]);
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  double total = 0, below_reference = 0, below_current = 0;
  for (std::size_t b = 0; b <= edges.size(); ++b) {
    const double at_reference = b < edges.size() ? share_at_most(reference, edges[b]) : 1.0;
    const double at_current = b < edges.size() ? share_at_most(current, edges[b]) : 1.0;
    const double p = std::max(at_reference - below_reference, kMinShare);
    const double q = std::max(at_current - below_current, kMinShare);
    total += (q - p) * std::log(q / p);
    below_reference = at_reference;
    below_current = at_current;
  }
  return total;
}

// max |F_reference(v) - F_current(v)| over all values v of either sample.
double ks(const std::vector<float>& reference, const std::vector<float>& current) {
  std::size_t i = 0, j = 0;
  double distance = 0;
  const auto n = static_cast<double>(reference.size()), m = static_cast<double>(current.size());
  while (i < reference.size() && j < current.size()) {
    const float value = std::min(reference[i], current[j]);
    while (i < reference.size() && reference[i] == value) ++i;
    while (j < current.size() && current[j] == value) ++j;
    distance =
        std::max(distance, std::abs(static_cast<double>(i) / n - static_cast<double>(j) / m));
  }
  return distance;
}

// A CSV import codes each categorical column by its own sorted names
// (kiln/data/csv.h), so one code can name different categories in two versions.
// The current version's codes are re-expressed in the reference's names; a name
// the reference lacks gets the code after the reference's last, a category of its
// own. DataError when a column is categorical in one version only.
void align_categories(const fs::path& reference, const fs::path& current, Columns& columns) {
  const DatasetVersion a = read_dataset_info(reference), b = read_dataset_info(current);
  const nlohmann::json ours = categories_of(a.source), theirs = categories_of(b.source);
  for (const auto* side : {&ours, &theirs})
    for (const auto& item : side->items())
      if (!ours.contains(item.key()) || !theirs.contains(item.key()))
        throw DataError(fmt::format("drift: column '{}' is categorical in {} but not in {}",
                                    item.key(),
                                    (ours.contains(item.key()) ? reference : current).string(),
                                    (ours.contains(item.key()) ? current : reference).string()));
  if (theirs.empty()) return;
  const nlohmann::json names = b.source.value("feature_columns", nlohmann::json::array());
  for (const auto& item : theirs.items()) {
    const auto at = std::find(names.begin(), names.end(), item.key());
    const auto column = static_cast<std::size_t>(at - names.begin());
    if (at == names.end() || column >= columns.size()) continue;
    const auto reference_names = ours[item.key()].get<std::vector<std::string>>();
    std::vector<float> code;
    for (const nlohmann::json& name : item.value()) {
      const auto found =
          std::find(reference_names.begin(), reference_names.end(), name.get<std::string>());
      code.push_back(static_cast<float>(found - reference_names.begin()));
    }
    for (float& value : columns[column])
      if (value >= 0 && value < static_cast<float>(code.size()))
        value = code[static_cast<std::size_t>(value)];
  }
}

bool use_summary(const DriftOptions& options, std::int64_t elements) {
  if (options.features == DriftFeatures::Auto) return elements > kAutoElementLimit;
  return options.features == DriftFeatures::Summary;
}

std::string feature_name(const std::string& array, bool summary, std::size_t index) {
  return summary ? kSummaryNames[index] : fmt::format("{}[{}]", array, index);
}

}  // namespace

double DriftReport::drifting_fraction() const {
  return per_feature.empty() ? 0 : static_cast<double>(drifting) / per_feature.size();
}

nlohmann::json DriftReport::to_json() const {
  std::vector<const FeatureDrift*> order;
  for (const FeatureDrift& feature : per_feature) order.push_back(&feature);
  std::sort(order.begin(), order.end(),
            [](const FeatureDrift* a, const FeatureDrift* b) { return a->psi > b->psi; });
  nlohmann::json top = nlohmann::json::array();
  for (std::size_t i = 0; i < std::min(order.size(), kTopFeatures); ++i)
    top.push_back({{"feature", order[i]->name},
                   {"psi", order[i]->psi},
                   {"ks", order[i]->ks},
                   {"drifting", order[i]->drifting}});
  return {{"features", features},
          {"feature_count", per_feature.size()},
          {"reference_rows", reference_rows},
          {"current_rows", current_rows},
          {"max_psi", max_psi},
          {"mean_psi", mean_psi},
          {"max_ks", max_ks},
          {"drifting_features", drifting},
          {"drifting_fraction", drifting_fraction()},
          {"most_drifting", top}};
}

DriftReport drift_report(const fs::path& reference, const fs::path& current,
                         const DriftOptions& options) {
  if (options.bins < 2)
    throw ConfigError(fmt::format("drift: bins must be at least 2, got {}", options.bins));
  const DatasetReader reference_reader(reference), current_reader(current);
  const ArrayInfo& a = reference_reader.array(options.array);
  const ArrayInfo& b = current_reader.array(options.array);
  if (std::vector(a.shape.begin() + 1, a.shape.end()) !=
      std::vector(b.shape.begin() + 1, b.shape.end()))
    throw DataError(
        fmt::format("drift: rows of '{}' are [{}] in {} but [{}] in {}", options.array,
                    fmt::join(a.shape.begin() + 1, a.shape.end(), ", "), reference.string(),
                    fmt::join(b.shape.begin() + 1, b.shape.end(), ", "), current.string()));
  const bool summary = use_summary(options, reference_reader.row_bytes(options.array) /
                                                static_cast<std::int64_t>(size_of(a.dtype)));
  Columns ref = sample_columns(reference_reader, options.array, summary, options.max_rows);
  Columns cur = sample_columns(current_reader, options.array, summary, options.max_rows);
  if (!summary && options.array == "x") align_categories(reference, current, cur);
  DriftReport report;
  report.features = summary ? "summary" : "elements";
  report.reference_rows = ref.empty() ? 0 : static_cast<std::int64_t>(ref.front().size());
  report.current_rows = cur.empty() ? 0 : static_cast<std::int64_t>(cur.front().size());
  if (report.reference_rows == 0 || report.current_rows == 0)
    throw DataError(fmt::format("drift: '{}' has no rows to compare", options.array));
  for (std::size_t f = 0; f < ref.size(); ++f) {
    if (ref[f].empty() || cur[f].empty()) continue;  // all NaN
    std::sort(ref[f].begin(), ref[f].end());
    std::sort(cur[f].begin(), cur[f].end());
    FeatureDrift feature{feature_name(options.array, summary, f), psi(ref[f], cur[f], options.bins),
                         ks(ref[f], cur[f])};
    feature.drifting = feature.psi > options.psi_threshold || feature.ks > options.ks_threshold;
    report.max_psi = std::max(report.max_psi, feature.psi);
    report.max_ks = std::max(report.max_ks, feature.ks);
    report.mean_psi += feature.psi;
    report.drifting += feature.drifting ? 1 : 0;
    report.per_feature.push_back(std::move(feature));
  }
  if (!report.per_feature.empty())
    report.mean_psi /= static_cast<double>(report.per_feature.size());
  return report;
}

}  // namespace kiln::data
