// Data drift of a dataset version against a reference version, feature by
// feature: the population stability index (PSI) over the reference's quantile bins
// and the two-sample Kolmogorov-Smirnov statistic.
//
// Features. `elements`: every element of a row is a feature (a pixel of an image,
// a column of a table). `summary`: five per-row statistics (mean, standard
// deviation, minimum, maximum, and the fraction of elements equal to 0), which
// catch brightness, contrast and blank-image shifts in large images at a fraction
// of the cost. `auto`: elements when a row has at most 4096 of them (a 64x64 image),
// else summary.
//
// A categorical column of a CSV import (kiln/data/csv.h) is compared by category
// name: each version codes its own sorted names, so the current version's codes are
// re-expressed in the reference's, and a name the reference lacks counts as a
// category of its own.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::data {

enum class DriftFeatures { Auto, Elements, Summary };

struct DriftOptions {
  std::string array = "x";
  DriftFeatures features = DriftFeatures::Auto;
  int bins = 10;  // PSI bins: the reference's deciles, merged where they tie
  // A feature drifts when its PSI or its KS statistic exceeds these. PSI > 0.25
  // is the usual "major shift" rule (Siddiqi, Credit Risk Scorecards, 2006).
  double psi_threshold = 0.25;
  double ks_threshold = 0.1;
  // Rows read from each version, evenly strided when there are more.
  std::int64_t max_rows = 10000;
};

struct FeatureDrift {
  std::string name;  // "x[412]", "mean", ...
  double psi = 0;
  double ks = 0;
  bool drifting = false;
};

struct DriftReport {
  std::string features;                               // "elements" or "summary"
  std::int64_t reference_rows = 0, current_rows = 0;  // rows compared
  std::vector<FeatureDrift> per_feature;
  double max_psi = 0, mean_psi = 0, max_ks = 0;
  std::int64_t drifting = 0;
  double drifting_fraction() const;
  nlohmann::json to_json() const;  // summary plus the 20 most drifting features
};

// DataError when a file or the array is missing, the two arrays' row shapes
// differ, or a column is categorical in one version only.
DriftReport drift_report(const std::filesystem::path& reference,
                         const std::filesystem::path& current, const DriftOptions& options);

}  // namespace kiln::data
