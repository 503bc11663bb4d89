// Imputation and scaling of tabular features (f32 [rows, columns]), fitted once on
// the training version and then part of the model: train's `preprocess:` for data
// that is not images,
//
//   preprocess: {impute: mean, scale: standard}
//
// impute: none | mean | median | constant (with `fill_value`, default 0) replaces
// NaN (a missing CSV cell); scale: none | standard ((x - mean) / std) | minmax
// ((x - min) / (max - min)). train fits it on its dataset, applies it to every
// batch it reads (validation too), records it in the weights' kiln.preprocess
// (so evaluate applies the same numbers) and as the run artifact preprocess.json;
// the ONNX export starts with it (IsNaN, Where, Sub, Div), so the exported model
// takes raw features. A constant column scales by 1.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <vector>

namespace kiln::train {

struct TabularTransform {
  std::vector<float> fill, center, scale;  // per column: x = (isnan(x) ? fill : x - center) / scale
};

// Whether `preprocess` asks for tabular preprocessing (has `impute` or `scale`).
bool is_tabular(const nlohmann::json& preprocess);

// Fits `preprocess` on /x (f32 [rows, columns]) of a dataset file and returns it
// with the fitted numbers added under "fitted": {"fill", "center", "scale"}.
// ConfigError for an unknown key or value; DataError for /x of another dtype or
// rank, or a column with no value to fit on.
nlohmann::json fit_tabular(const nlohmann::json& preprocess, const std::filesystem::path& file);

// The fitted transform of `preprocess`, for `columns` columns; ConfigError when it
// was not fitted or was fitted on another number of columns.
TabularTransform tabular_transform(const nlohmann::json& preprocess, std::int64_t columns);

// Applies `transform` in place to `rows` rows of values (C order).
void apply(const TabularTransform& transform, float* values, std::int64_t rows);

}  // namespace kiln::train
