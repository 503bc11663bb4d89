// Tabular impute/scale/one-hot (kiln/train/tabular.h): the fitted numbers for each
// method on a small table with known statistics, the transform they make, and what
// is refused.
#include <kiln/data/dataset.h>
#include <kiln/error.h>
#include <kiln/train/tabular.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "support/support.h"

namespace kiln::train {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

// Columns: a = 1, 2, 3, NaN, 10 (mean 4, median 2.5, std sqrt(12.5), min 1, max 10);
// b = 5 everywhere (constant).
data::DatasetVersion table(const fs::path& registry, DType dtype = DType::F32) {
  const std::vector<float> values = {1, 5, 2, 5, 3, 5, kNan, 5, 10, 5};
  data::Array x{"x", dtype, {5, 2}, std::vector<std::uint8_t>(values.size() * size_of(dtype))};
  if (dtype == DType::F32) std::memcpy(x.bytes.data(), values.data(), x.bytes.size());
  data::Array y{"y", DType::U8, {5}, {0, 1, 0, 1, 0}};
  return data::DatasetStore(registry).put("table", {x, y}, Json::object());
}

std::vector<float> fitted(const Json& preprocess, const char* key) {
  std::vector<float> values;
  for (const Json& value : preprocess["fitted"][key])
    values.push_back(value.is_null() ? kNan : value.get<float>());
  return values;
}

TEST(Tabular, MeanImputationAndStandardScaling) {
  test::TempDir dir;
  const Json preprocess =
      fit_tabular({{"impute", "mean"}, {"scale", "standard"}}, table(dir.path()));
  EXPECT_EQ(fitted(preprocess, "fill"), (std::vector<float>{4, 5}));
  EXPECT_EQ(fitted(preprocess, "center"), (std::vector<float>{4, 5}));
  EXPECT_FLOAT_EQ(fitted(preprocess, "scale")[0], std::sqrt(12.5f));
  EXPECT_EQ(fitted(preprocess, "scale")[1], 1.0f);  // a constant column is not divided by 0
  EXPECT_EQ(preprocess["fitted"]["rows"], 5);

  std::vector<float> rows = {kNan, 5, 10, 7};
  apply(tabular_transform(preprocess, 2), rows.data(), rows.data(), 2);
  EXPECT_EQ(rows[0], 0.0f);  // the mean, centred
  EXPECT_EQ(rows[1], 0.0f);
  EXPECT_FLOAT_EQ(rows[2], 6 / std::sqrt(12.5f));
  EXPECT_EQ(rows[3], 2.0f);
}

TEST(Tabular, MedianConstantAndMinMax) {
  test::TempDir dir;
  const data::DatasetVersion file = table(dir.path());
  EXPECT_EQ(fitted(fit_tabular({{"impute", "median"}}, file), "fill"),
            (std::vector<float>{2.5, 5}));
  const Json constant =
      fit_tabular({{"impute", "constant"}, {"fill_value", -1}, {"scale", "minmax"}}, file);
  EXPECT_EQ(fitted(constant, "fill"), (std::vector<float>{-1, -1}));
  EXPECT_EQ(fitted(constant, "center"), (std::vector<float>{1, 5}));
  EXPECT_EQ(fitted(constant, "scale"), (std::vector<float>{9, 1}));
  // Without imputation a missing value stays missing.
  const Json scale_only = fit_tabular({{"scale", "minmax"}}, file);
  std::vector<float> row = {kNan, 5};
  apply(tabular_transform(scale_only, 2), row.data(), row.data(), 1);
  EXPECT_TRUE(std::isnan(row[0]));
}

TEST(Tabular, BadSettingsAndDataAreRefused) {
  test::TempDir dir;
  const data::DatasetVersion file = table(dir.path());
  EXPECT_THAT(
      [&] {
        fit_tabular({{"impute", "mode"}}, file);
      },
      ::testing::ThrowsMessage<ConfigError>(::testing::HasSubstr(
          "preprocess: impute must be one of none, mean, median, constant; got \"mode\"")));
  EXPECT_THAT(
      [&] {
        fit_tabular({{"scale", "standard"}, {"flip", true}}, file);
      },
      ::testing::ThrowsMessage<ConfigError>(::testing::HasSubstr("unknown key 'flip'")));
  EXPECT_THAT(
      [&] {
        tabular_transform({{"scale", "standard"}}, 2);
      },
      ::testing::ThrowsMessage<ConfigError>(::testing::HasSubstr("has not been fitted")));
  const Json fitted_on_two = fit_tabular({{"scale", "standard"}}, file);
  EXPECT_THAT([&] { tabular_transform(fitted_on_two, 3); },
              ::testing::ThrowsMessage<ConfigError>(
                  ::testing::HasSubstr("does not hold one number per column (3 columns)")));
  test::TempDir other;
  EXPECT_THAT(
      [&] {
        fit_tabular({{"scale", "standard"}}, table(other.path(), DType::I32));
      },
      ::testing::ThrowsMessage<DataError>(
          ::testing::HasSubstr("needs /x as f32 [rows, columns]; it is i32 [5, 2]")));
}

// Columns a (numbers) and city (codes into `categories`), as a CSV import with
// categorical_columns: [city] stores them.
data::DatasetVersion city_table(const fs::path& registry, const std::string& name,
                                const std::vector<float>& values, const Json& categories) {
  const std::int64_t rows = static_cast<std::int64_t>(values.size() / 2);
  data::Array x{"x", DType::F32, {rows, 2}, std::vector<std::uint8_t>(values.size() * 4)};
  std::memcpy(x.bytes.data(), values.data(), x.bytes.size());
  data::Array y{"y", DType::U8, {rows}, std::vector<std::uint8_t>(static_cast<std::size_t>(rows))};
  Json source = {{"feature_columns", {"a", "city"}}};
  if (!categories.is_null()) source["categories"] = categories;
  return data::DatasetStore(registry).put(name, {x, y}, source);
}

TEST(Tabular, CategoricalColumnsAreOneHotEncodedByCategoryName) {
  test::TempDir dir;
  const data::DatasetVersion train =
      city_table(dir.path(), "train", {1, 0, 2, 1, 3, 0}, {{"city", {"Lima", "Paris"}}});
  const Json preprocess = fit_tabular({{"scale", "standard"}}, train);
  EXPECT_EQ(preprocess["fitted"]["categorical"],
            Json::parse(R"([{"column": 1, "name": "city", "categories": ["Lima", "Paris"]}])"));
  EXPECT_TRUE(preprocess["fitted"]["fill"][1].is_null());
  EXPECT_EQ(fitted(preprocess, "center")[1], 0.0f);

  // Another version knows Athens and Paris: Paris (its code 1) is fitted category 1,
  // Athens was never seen and, like a missing cell, is all zeros.
  const data::DatasetVersion test =
      city_table(dir.path(), "test", {2, 0, 2, 1, 2, kNan}, {{"city", {"Athens", "Paris"}}});
  const TabularTransform transform = tabular_transform(preprocess, 2, &test);
  ASSERT_EQ(transform.output_columns(), 3);
  const std::vector<float> in = {2, 0, 2, 1, 2, kNan};
  std::vector<float> out(9, -7);
  apply(transform, in.data(), out.data(), 3);
  EXPECT_EQ(out, (std::vector<float>{0, 0, 0, 0, 0, 1, 0, 0, 0}));

  // Without a version the codes are the fitted categories' own (the ONNX input).
  const std::vector<float> lima = {3, 0};
  std::vector<float> encoded(3);
  apply(tabular_transform(preprocess, 2), lima.data(), encoded.data(), 1);
  EXPECT_FLOAT_EQ(encoded[0], 1 / std::sqrt(2.0f / 3));
  EXPECT_EQ(encoded[1], 1.0f);
  EXPECT_EQ(encoded[2], 0.0f);
}

TEST(Tabular, CategoricalColumnsThatDisagreeAreRefused) {
  test::TempDir dir;
  const data::DatasetVersion train =
      city_table(dir.path(), "train", {1, 0, 2, 1}, {{"city", {"Lima", "Paris"}}});
  const Json preprocess = fit_tabular(Json::object(), train);
  const data::DatasetVersion numbers = city_table(dir.path(), "numbers", {1, 5}, nullptr);
  EXPECT_THAT([&] { tabular_transform(preprocess, 2, &numbers); },
              ::testing::ThrowsMessage<DataError>(::testing::HasSubstr(
                  "column 'city' is categorical in the training data but holds numbers here")));
  const data::DatasetVersion other =
      city_table(dir.path(), "other", {1, 0}, {{"city", {"Lima"}}, {"a", {"x"}}});
  EXPECT_THAT([&] { tabular_transform(preprocess, 2, &other); },
              ::testing::ThrowsMessage<DataError>(::testing::HasSubstr(
                  "column 'a' is categorical here but held numbers in the training data")));
  Json many = Json::array();
  for (int i = 0; i <= 1024; ++i) many.push_back("c" + std::to_string(i));
  const data::DatasetVersion wide = city_table(dir.path(), "wide", {1, 0}, {{"city", many}});
  EXPECT_THAT([&] { fit_tabular(Json::object(), wide); },
              ::testing::ThrowsMessage<DataError>(::testing::HasSubstr(
                  "categorical column 'city' has 1025 categories; one-hot encoding takes at "
                  "most 1024")));
}

}  // namespace
}  // namespace kiln::train
