// Imputation, scaling and one-hot encoding of tabular features (f32 [rows,
// columns]), fitted once on the training version and then part of the model:
// train's `preprocess:` for data that is not images,
//
//   preprocess: {impute: mean, scale: standard}
//
// impute: none | mean | median | constant (with `fill_value`, default 0) replaces
// NaN (a missing CSV cell); scale: none | standard ((x - mean) / std) | minmax
// ((x - min) / (max - min)). Categorical columns (a CSV import's
// `categorical_columns`, listed in the version's source["categories"]) are one-hot
// encoded whether or not `preprocess` is given: one column per category of the
// training version; a missing or unseen category is all zeros. The features the
// model sees are the numeric columns in order, then each categorical column's
// one-hot block in order.
//
// train fits it on its dataset, applies it to every batch it reads (validation
// too), records it in the weights' kiln.preprocess (so evaluate applies the same
// numbers and categories) and as the run artifact preprocess.json; the ONNX export
// starts with it (IsNaN, Where, Sub, Div; Gather, Equal, Cast and Concat for one-hot),
// so the exported model takes raw features, a categorical one as the index of its
// name in kiln.preprocess's fitted categories. A constant column scales by 1.
#pragma once

#include <kiln/data/dataset.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <vector>

namespace kiln::train {

struct OneHot {
  std::int64_t column = 0;  // the input column holding category codes
  // The data's code -> index among the fitted categories; -1: a category the
  // training data did not have.
  std::vector<std::int32_t> remap;
  std::int64_t width = 0;  // the fitted categories
};

struct TabularTransform {
  std::int64_t input_columns = 0;
  std::vector<std::int64_t> numeric;  // input columns that hold numbers, in order
  std::vector<float> fill, center,
      scale;                    // per numeric column: (isnan(x) ? fill : x - center) / scale
  std::vector<OneHot> one_hot;  // per categorical column, in order

  std::int64_t output_columns() const;
};

// Whether `preprocess` asks for tabular preprocessing (has `impute`, `scale` or
// fitted numbers).
bool is_tabular(const nlohmann::json& preprocess);

// Fits `preprocess` on /x (f32 [rows, columns]) of a dataset version and returns it
// with the fitted numbers added under "fitted": {"fill", "center", "scale" (one per
// column; null, 0, 1 for a categorical one), "categorical": [{"column", "name",
// "categories"}], "rows"}. ConfigError for an unknown key or value; DataError for /x
// of another dtype or rank, a numeric column with no value to fit on, or a
// categorical column with more than kMaxOneHot categories.
nlohmann::json fit_tabular(const nlohmann::json& preprocess, const data::DatasetVersion& data);

inline constexpr std::size_t kMaxOneHot = 1024;

// The fitted transform of `preprocess` for data with `columns` columns. `data`: the
// version it applies to, whose source["categories"] name the codes in its x (each
// is mapped to the fitted category of the same name); null: the codes already
// index the fitted categories (the ONNX export's input). ConfigError when it was
// not fitted or was fitted on another number of columns; DataError naming the file
// when a categorical column of the fit is not categorical in `data` or the other
// way round.
TabularTransform tabular_transform(const nlohmann::json& preprocess, std::int64_t columns,
                                   const data::DatasetVersion* data = nullptr);

// Applies `transform` to `rows` rows of input_columns values (C order), writing
// rows of output_columns() values to `out`. `in` may be `out` when the transform
// has no one-hot columns.
void apply(const TabularTransform& transform, const float* in, float* out, std::int64_t rows);

}  // namespace kiln::train
