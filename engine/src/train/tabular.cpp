#include <kiln/data/reader.h>
#include <kiln/error.h>
#include <kiln/train/tabular.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string>

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

// The categorical columns of a version, as fit_tabular records them.
nlohmann::json categorical_columns(const data::DatasetVersion& version, const data::ArrayInfo& x) {
  nlohmann::json columns = nlohmann::json::array();
  const nlohmann::json categories_by_name = data::categories_of(version.source);
  if (categories_by_name.empty()) return columns;
  const nlohmann::json names = version.source.value("feature_columns", nlohmann::json::array());
  for (const auto& [name, categories] : categories_by_name.items()) {
    const auto at = std::find(names.begin(), names.end(), name);
    if (at == names.end() || x.shape.size() != 2 || at - names.begin() >= x.shape[1])
      throw DataError(fmt::format("{}: categorical column '{}' is not a column of /x",
                                  version.file.string(), name));
    if (categories.size() > kMaxOneHot)
      throw DataError(fmt::format(
          "{}: categorical column '{}' has {} categories; one-hot encoding takes at most {}",
          version.file.string(), name, categories.size(), kMaxOneHot));
    columns.push_back({{"column", at - names.begin()}, {"name", name}, {"categories", categories}});
  }
  std::sort(columns.begin(), columns.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a["column"].get<std::int64_t>() < b["column"].get<std::int64_t>();
  });
  return columns;
}

// The one-hot blocks of the fitted `categorical` columns, with each code of `data`
// mapped to the fitted category of its name (identity without `data`).
std::vector<OneHot> one_hot_blocks(const nlohmann::json& categorical, std::int64_t columns,
                                   const data::DatasetVersion* data) {
  const nlohmann::json data_categories =
      data ? data::categories_of(data->source) : nlohmann::json::object();
  std::vector<OneHot> blocks;
  std::set<std::string> fitted_names;
  for (const nlohmann::json& entry : categorical) {
    OneHot block;
    const std::string name = entry.at("name").get<std::string>();
    const auto categories = entry.at("categories").get<std::vector<std::string>>();
    block.column = entry.at("column").get<std::int64_t>();
    block.width = static_cast<std::int64_t>(categories.size());
    if (block.column < 0 || block.column >= columns)
      throw ConfigError(fmt::format("preprocess: categorical column '{}' is column {} of {}", name,
                                    block.column, columns));
    fitted_names.insert(name);
    if (!data) {
      for (std::int32_t i = 0; i < static_cast<std::int32_t>(block.width); ++i)
        block.remap.push_back(i);
    } else if (!data_categories.contains(name)) {
      throw DataError(fmt::format(
          "{}: column '{}' is categorical in the training data but holds numbers here (import "
          "it with categorical_columns: [{}])",
          data->file.string(), name, name));
    } else {
      for (const nlohmann::json& text : data_categories[name]) {
        const auto at = std::find(categories.begin(), categories.end(), text.get<std::string>());
        block.remap.push_back(
            at == categories.end() ? -1 : static_cast<std::int32_t>(at - categories.begin()));
      }
    }
    blocks.push_back(std::move(block));
  }
  for (const auto& item : data_categories.items())
    if (!fitted_names.contains(item.key()))
      throw DataError(
          fmt::format("{}: column '{}' is categorical here but held numbers in the training data",
                      data->file.string(), item.key()));
  return blocks;
}

}  // namespace

bool is_tabular(const nlohmann::json& preprocess) {
  return preprocess.is_object() && (preprocess.contains("impute") || preprocess.contains("scale") ||
                                    preprocess.contains("fitted"));
}

nlohmann::json fit_tabular(const nlohmann::json& preprocess, const data::DatasetVersion& data) {
  for (const auto& [key, value] : preprocess.items())
    if (key != "impute" && key != "scale" && key != "fill_value" && key != "fitted")
      throw ConfigError(fmt::format(
          "preprocess: unknown key '{}' for tabular data (impute, fill_value, scale)", key));
  const std::string impute = choice(preprocess, "impute", kImpute);
  const std::string scale = choice(preprocess, "scale", kScale);
  const nlohmann::json fill_value = preprocess.value("fill_value", nlohmann::json(0.0));
  if (!fill_value.is_number())
    throw ConfigError("preprocess: fill_value must be a number; got " + fill_value.dump());

  const fs::path& file = data.file;
  const data::DatasetReader reader(file);
  const data::ArrayInfo& x = reader.array("x");
  const nlohmann::json categorical = categorical_columns(data, x);
  if (x.dtype != DType::F32 || x.shape.size() != 2)
    throw DataError(
        fmt::format("{}: preprocess impute/scale needs /x as f32 [rows, columns]; it "
                    "is {} [{}]",
                    file.string(), name_of(x.dtype), fmt::join(x.shape, ", ")));
  const std::int64_t columns = x.shape[1];
  std::vector<bool> is_category(static_cast<std::size_t>(columns), false);
  for (const nlohmann::json& column : categorical)
    is_category[column["column"].get<std::size_t>()] = true;
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
    if (is_category[static_cast<std::size_t>(column)]) {
      fitted["fill"].push_back(nullptr);
      fitted["center"].push_back(0);
      fitted["scale"].push_back(1);
      continue;
    }
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
  if (!categorical.empty()) result["fitted"]["categorical"] = categorical;
  return result;
}

std::int64_t TabularTransform::output_columns() const {
  std::int64_t columns = static_cast<std::int64_t>(numeric.size());
  for (const OneHot& block : one_hot) columns += block.width;
  return columns;
}

TabularTransform tabular_transform(const nlohmann::json& preprocess, std::int64_t columns,
                                   const data::DatasetVersion* data) {
  if (!preprocess.contains("fitted") || !preprocess["fitted"].is_object())
    throw ConfigError(
        "preprocess: impute/scale has not been fitted (train fits it on its dataset)");
  const nlohmann::json& fitted = preprocess["fitted"];
  const std::vector<float> fill = floats(fitted, "fill", columns);
  const std::vector<float> center = floats(fitted, "center", columns);
  const std::vector<float> scale = floats(fitted, "scale", columns);
  TabularTransform transform;
  transform.input_columns = columns;
  transform.one_hot =
      one_hot_blocks(fitted.value("categorical", nlohmann::json::array()), columns, data);
  std::vector<bool> is_category(static_cast<std::size_t>(columns), false);
  for (const OneHot& block : transform.one_hot)
    is_category[static_cast<std::size_t>(block.column)] = true;
  for (std::int64_t column = 0; column < columns; ++column) {
    const auto c = static_cast<std::size_t>(column);
    if (is_category[c]) continue;
    transform.numeric.push_back(column);
    transform.fill.push_back(fill[c]);
    transform.center.push_back(center[c]);
    transform.scale.push_back(scale[c]);
  }
  return transform;
}

void apply(const TabularTransform& transform, const float* in, float* out, std::int64_t rows) {
  const auto input_columns = static_cast<std::size_t>(transform.input_columns);
  const auto output_columns = static_cast<std::size_t>(transform.output_columns());
  for (std::int64_t row = 0; row < rows; ++row) {
    const float* x = in + static_cast<std::size_t>(row) * input_columns;
    float* y = out + static_cast<std::size_t>(row) * output_columns;
    for (std::size_t i = 0; i < transform.numeric.size(); ++i) {
      const float value = x[transform.numeric[i]];
      *y++ = ((std::isnan(value) ? transform.fill[i] : value) - transform.center[i]) /
             transform.scale[i];
    }
    for (const OneHot& block : transform.one_hot) {
      std::fill(y, y + block.width, 0.0f);
      const float code = x[block.column];
      if (code >= 0 && code < static_cast<float>(block.remap.size()) && std::trunc(code) == code) {
        const std::int32_t index = block.remap[static_cast<std::size_t>(code)];
        if (index >= 0) y[index] = 1.0f;
      }
      y += block.width;
    }
  }
}

}  // namespace kiln::train
