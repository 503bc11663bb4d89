// Tabular impute/scale (kiln/train/tabular.h): the fitted numbers for each method on
// a small table with known statistics, the transform they make, and what is refused.
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
fs::path table(const fs::path& registry, DType dtype = DType::F32) {
  const std::vector<float> values = {1, 5, 2, 5, 3, 5, kNan, 5, 10, 5};
  data::Array x{"x", dtype, {5, 2}, std::vector<std::uint8_t>(values.size() * size_of(dtype))};
  if (dtype == DType::F32) std::memcpy(x.bytes.data(), values.data(), x.bytes.size());
  data::Array y{"y", DType::U8, {5}, {0, 1, 0, 1, 0}};
  return data::DatasetStore(registry).put("table", {x, y}, Json::object()).file;
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
  apply(tabular_transform(preprocess, 2), rows.data(), 2);
  EXPECT_EQ(rows[0], 0.0f);  // the mean, centred
  EXPECT_EQ(rows[1], 0.0f);
  EXPECT_FLOAT_EQ(rows[2], 6 / std::sqrt(12.5f));
  EXPECT_EQ(rows[3], 2.0f);
}

TEST(Tabular, MedianConstantAndMinMax) {
  test::TempDir dir;
  const fs::path file = table(dir.path());
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
  apply(tabular_transform(scale_only, 2), row.data(), 1);
  EXPECT_TRUE(std::isnan(row[0]));
}

TEST(Tabular, BadSettingsAndDataAreRefused) {
  test::TempDir dir;
  const fs::path file = table(dir.path());
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

}  // namespace
}  // namespace kiln::train
