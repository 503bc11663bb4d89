// drift_report: PSI and KS on synthetic shifts, and the acceptance check on the
// real Fashion-MNIST test set: brightness +0.2 trips the default thresholds, the
// unshifted set does not.
#include <kiln/data/dataset.h>
#include <kiln/data/drift.h>
#include <kiln/data/idx.h>
#include <kiln/error.h>

#include "data/data_test_support.h"

#include <gtest/gtest.h>

#include <random>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::make_array;

// The fraction of drifting features at which the drift stage fails by default.
constexpr double kMaxDriftingFraction = 0.05;

Array gaussian_features(std::int64_t rows, std::int64_t features, float shift, unsigned seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> values(static_cast<std::size_t>(rows * features));
  for (float& value : values) value = normal(random) + shift;
  testing::Bytes bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return make_array("x", DType::F32, {rows, features}, std::move(bytes));
}

class Drift : public ::testing::Test {
 protected:
  fs::path put(Array x) {
    return store_.put("d" + std::to_string(counter_++), {std::move(x)}, {}).file;
  }
  testing::ScratchDir dir_;
  DatasetStore store_{dir_.path()};
  int counter_ = 0;
};

TEST_F(Drift, SameDistributionDoesNotDriftAShiftedOneDoes) {
  const fs::path reference = put(gaussian_features(4000, 8, 0, 1));
  const DriftReport same = drift_report(reference, put(gaussian_features(3000, 8, 0, 2)), {});
  EXPECT_EQ(same.features, "elements");
  EXPECT_EQ(same.per_feature.size(), 8u);
  EXPECT_LT(same.max_psi, 0.05);
  EXPECT_LT(same.max_ks, 0.05);
  EXPECT_EQ(same.drifting, 0);
  const DriftReport shifted = drift_report(reference, put(gaussian_features(3000, 8, 0.5f, 3)), {});
  EXPECT_GT(shifted.mean_psi, 0.2);
  EXPECT_NEAR(shifted.max_ks, 0.197, 0.04);  // Phi(0.25) - Phi(-0.25)
  EXPECT_EQ(shifted.drifting, 8);
  EXPECT_EQ(shifted.to_json()["drifting_features"], 8);
}

TEST_F(Drift, SummaryFeaturesForWideRows) {
  const fs::path reference = put(gaussian_features(500, 5000, 0, 4));
  DriftOptions options;
  const DriftReport report =
      drift_report(reference, put(gaussian_features(500, 5000, 1, 5)), options);
  EXPECT_EQ(report.features, "summary");
  ASSERT_EQ(report.per_feature.size(), 5u);
  EXPECT_EQ(report.per_feature[0].name, "mean");
  EXPECT_TRUE(report.per_feature[0].drifting);   // the mean moved by 1
  EXPECT_FALSE(report.per_feature[1].drifting);  // the spread did not
}

TEST_F(Drift, FashionMnistBrightnessShiftTripsTheThresholdAndTheTestSetDoesNot) {
  const fs::path fashion = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(fashion / "t10k-images-idx3-ubyte.gz"))
    GTEST_FAIL() << "Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)";
  Array train = read_idx(fashion / "train-images-idx3-ubyte.gz");
  Array test = read_idx(fashion / "t10k-images-idx3-ubyte.gz");
  train.name = test.name = "x";
  Array brighter = test;
  for (std::uint8_t& pixel : brighter.bytes)
    pixel = static_cast<std::uint8_t>(std::min(pixel + 51, 255));
  const fs::path reference = put(std::move(train));
  const DriftReport unshifted = drift_report(reference, put(std::move(test)), {});
  const DriftReport shifted = drift_report(reference, put(std::move(brighter)), {});
  EXPECT_LE(unshifted.drifting_fraction(), kMaxDriftingFraction) << unshifted.to_json().dump();
  EXPECT_GT(shifted.drifting_fraction(), kMaxDriftingFraction) << shifted.to_json().dump();
  EXPECT_LT(unshifted.max_psi, 0.05);
  EXPECT_GT(shifted.max_psi, 1.0);
}

// One column of codes, categorical over `names` (as a CSV import stores it).
fs::path put_cities(DatasetStore& store, const std::string& name, const std::vector<float>& codes,
                    const std::vector<std::string>& names) {
  testing::Bytes bytes(codes.size() * 4);
  std::memcpy(bytes.data(), codes.data(), bytes.size());
  Array x = make_array("x", DType::F32, {static_cast<std::int64_t>(codes.size()), 1}, bytes);
  return store
      .put(name, {std::move(x)}, {{"feature_columns", {"city"}}, {"categories", {{"city", names}}}})
      .file;
}

// The same cities coded differently (each version sorts its own names) do not
// drift; cities the reference never had do.
TEST_F(Drift, CategoricalColumnsAreComparedByName) {
  std::vector<float> reference_codes, same_codes, new_codes;
  for (int i = 0; i < 300; ++i) {
    reference_codes.push_back(static_cast<float>(1 + i % 2));  // Lima, Oslo
    same_codes.push_back(static_cast<float>(i % 2));           // Lima, Oslo in [Lima, Oslo]
    new_codes.push_back(static_cast<float>(i % 3 == 0 ? 0 : 1 + i % 2));  // Bogota too
  }
  const fs::path reference = put_cities(store_, "ref", reference_codes, {"Athens", "Lima", "Oslo"});
  const DriftReport same =
      drift_report(reference, put_cities(store_, "same", same_codes, {"Lima", "Oslo"}), {});
  EXPECT_EQ(same.drifting, 0) << same.to_json().dump();
  EXPECT_LT(same.max_psi, 0.01);
  const DriftReport other =
      drift_report(reference, put_cities(store_, "new", new_codes, {"Bogota", "Lima", "Oslo"}), {});
  EXPECT_EQ(other.drifting, 1) << other.to_json().dump();

  const fs::path numbers = put(make_array("x", DType::F32, {1, 1}, testing::Bytes(4)));
  try {
    drift_report(reference, numbers, {});
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), "drift: column 'city' is categorical in " +
                                         reference.string() + " but not in " + numbers.string());
  }
}

}  // namespace
}  // namespace kiln::data
