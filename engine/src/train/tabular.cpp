#include <kiln/data/reader.h>
#include <kiln/error.h>
#include <kiln/train/tabular.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace kiln::train {
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kImpute = {"none", "mean", "median", "constant"};
const std::vector<std::string> kScale = {"none", "standard", "minmax"};

std::string choice(const nlohmann::json& preprocess, const char* key,
                   const std::vector<std::string>& allowed) {
  if (!preprocess.contains(key)) return "none";
  const nlohmann::json& value = preprocess[key];
  if (!value.is_string() ||
      std::find(allowed.begin(), allowed.end(), value.get<std::string>()) == allowed.end())
    throw ConfigError(fmt::format("preprocess: {} must be one of {}; got {}", key,
                                  fmt::join(allowed, ", "), value.dump()));
  return value.get<std::string>();
}

// Per-column statistics over the values that are not NaN (Welford's update).
struct Column {
  std::int64_t count = 0;
  double mean = 0, m2 = 0;
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  std::vector<float> values;  // kept for the median only

  void add(float value, bool keep) {
    if (std::isnan(value)) return;
    ++count;
    const double delta = value - mean;
    mean += delta / static_cast<double>(count);
    m2 += delta * (value - mean);
    min = std::min(min, value);
    max = std::max(max, value);
    if (keep) values.push_back(value);
  }

  float median() {
    const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
    std::nth_element(values.begin(), middle, values.end());
    if (values.size() % 2 == 1) return *middle;
    const float below = *std::max_element(values.begin(), middle);
    return static_cast<float>((static_cast<double>(below) + *middle) / 2);
  }
};

std::vector<float> floats(const nlohmann::json& fitted, const char* key, std::int64_t columns) {
  if (!fitted.contains(key) || !fitted[key].is_array() ||
      static_cast<std::int64_t>(fitted[key].size()) != columns)
    throw ConfigError(
        fmt::format("preprocess: the fitted '{}' does not hold one number per column ({} columns)",
                    key, columns));
  std::vector<float> values;
  for (const nlohmann::json& value : fitted[key]) {
    if (!value.is_number() && !value.is_null())
      throw ConfigError(fmt::format("preprocess: the fitted '{}' holds {}", key, value.dump()));
    values.push_back(value.is_null() ? std::numeric_limits<float>::quiet_NaN()
                                     : value.get<float>());
  }
  return values;
}

}  // namespace

bool is_tabular(const nlohmann::json& preprocess) {
  return preprocess.is_object() && (preprocess.contains("impute") || preprocess.contains("scale"));
}

nlohmann::json fit_tabular(const nlohmann::json& preprocess, const fs::path& file) {
  for (const auto& [key, value] : preprocess.items())
    if (key != "impute" && key != "scale" && key != "fill_value" && key != "fitted")
      throw ConfigError(fmt::format(
          "preprocess: unknown key '{}' for tabular data (impute, fill_value, scale)", key));
  const std::string impute = choice(preprocess, "impute", kImpute);
  const std::string scale = choice(preprocess, "scale", kScale);
  const nlohmann::json fill_value = preprocess.value("fill_value", nlohmann::json(0.0));
  if (!fill_value.is_number())
    throw ConfigError("preprocess: fill_value must be a number; got " + fill_value.dump());

  const data::DatasetReader reader(file);
  const data::ArrayInfo& x = reader.array("x");
  if (x.dtype != DType::F32 || x.shape.size() != 2)
    throw DataError(
        fmt::format("{}: preprocess impute/scale needs /x as f32 [rows, columns]; it "
                    "is {} [{}]",
                    file.string(), name_of(x.dtype), fmt::join(x.shape, ", ")));
  const std::int64_t columns = x.shape[1];
  std::vector<Column> stats(static_cast<std::size_t>(columns));
  data::for_each_block(reader, "x",
                       [&](std::int64_t, std::int64_t rows, const std::uint8_t* bytes) {
                         for (std::int64_t row = 0; row < rows; ++row)
                           for (std::int64_t column = 0; column < columns; ++column) {
                             float value = 0;
                             std::memcpy(&value, bytes + (row * columns + column) * 4, 4);
                             stats[static_cast<std::size_t>(column)].add(value, impute == "median");
                           }
                       });

  nlohmann::json fitted = {{"fill", nlohmann::json::array()},
                           {"center", nlohmann::json::array()},
                           {"scale", nlohmann::json::array()}};
  for (std::int64_t column = 0; column < columns; ++column) {
    Column& stat = stats[static_cast<std::size_t>(column)];
    if (stat.count == 0 && (impute == "mean" || impute == "median" || scale != "none"))
      throw DataError(fmt::format("{}: column {} of /x holds no number to fit preprocess on",
                                  file.string(), column));
    float fill = std::numeric_limits<float>::quiet_NaN();  // "none": NaN stays NaN
    if (impute == "mean") fill = static_cast<float>(stat.mean);
    if (impute == "median") fill = stat.median();
    if (impute == "constant") fill = fill_value.get<float>();
    float center = 0, spread = 1;
    if (scale == "standard") {
      center = static_cast<float>(stat.mean);
      spread = static_cast<float>(std::sqrt(stat.m2 / static_cast<double>(stat.count)));
    } else if (scale == "minmax") {
      center = stat.min;
      spread = stat.max - stat.min;
    }
    if (!(spread > 0) || !std::isfinite(spread)) spread = 1;  // a constant column
    fitted["fill"].push_back(std::isnan(fill) ? nlohmann::json(nullptr) : nlohmann::json(fill));
    fitted["center"].push_back(center);
    fitted["scale"].push_back(spread);
  }
  nlohmann::json result = preprocess;
  result["impute"] = impute;
  result["scale"] = scale;
  result["fitted"] = std::move(fitted);
  result["fitted"]["rows"] = x.shape[0];
  return result;
}

TabularTransform tabular_transform(const nlohmann::json& preprocess, std::int64_t columns) {
  if (!preprocess.contains("fitted") || !preprocess["fitted"].is_object())
    throw ConfigError(
        "preprocess: impute/scale has not been fitted (train fits it on its dataset)");
  const nlohmann::json& fitted = preprocess["fitted"];
  return {floats(fitted, "fill", columns), floats(fitted, "center", columns),
          floats(fitted, "scale", columns)};
}

void apply(const TabularTransform& transform, float* values, std::int64_t rows) {
  const std::size_t columns = transform.center.size();
  for (std::int64_t row = 0; row < rows; ++row) {
    float* x = values + static_cast<std::size_t>(row) * columns;
    for (std::size_t c = 0; c < columns; ++c) {
      const float value = std::isnan(x[c]) ? transform.fill[c] : x[c];
      x[c] = (value - transform.center[c]) / transform.scale[c];
    }
  }
}

}  // namespace kiln::train
