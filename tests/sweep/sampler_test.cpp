// The grid and random samplers: coverage, order, ranges and reproducibility.
#include <kiln/error.h>
#include <kiln/sweep/sampler.h>

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <tuple>

#include "sweep_test_util.h"

namespace kiln::sweep {
namespace {

TEST(GridSamplerTest, CoversTheProductOnceInRowMajorOrder) {
  SweepSpec spec = test_spec(SamplerKind::Grid, {categorical("t.with.a", {"x", "y", "z"}),
                                                 param("t.with.b", IntDistribution{1, 7, false, 3}),
                                                 param("t.with.c", IntDistribution{0, 1})});
  ASSERT_EQ(grid_size(spec), std::optional<std::int64_t>(18));
  auto sampler = make_sampler(spec);
  const Study study;
  std::set<std::tuple<double, double, double>> seen;
  for (int n = 0; n < 18; ++n) {
    auto p = sampler->sample(study, n);
    seen.insert({p.at("t.with.a"), p.at("t.with.b"), p.at("t.with.c")});
  }
  EXPECT_EQ(seen.size(), 18u);
  for (double a : {0, 1, 2})
    for (double b : {1, 4, 7})
      for (double c : {0, 1}) EXPECT_EQ(seen.count({a, b, c}), 1u) << a << " " << b << " " << c;
  // The last parameter varies fastest.
  EXPECT_EQ(sampler->sample(study, 0),
            (std::map<std::string, double>{{"t.with.a", 0}, {"t.with.b", 1}, {"t.with.c", 0}}));
  EXPECT_EQ(sampler->sample(study, 1),
            (std::map<std::string, double>{{"t.with.a", 0}, {"t.with.b", 1}, {"t.with.c", 1}}));
  EXPECT_EQ(sampler->sample(study, 2),
            (std::map<std::string, double>{{"t.with.a", 0}, {"t.with.b", 4}, {"t.with.c", 0}}));
  EXPECT_EQ(sampler->sample(study, 17),
            (std::map<std::string, double>{{"t.with.a", 2}, {"t.with.b", 7}, {"t.with.c", 1}}));
  EXPECT_THROW(sampler->sample(study, 18), InternalError);
}

TEST(GridSamplerTest, SizeIsUnknownWithAContinuousRange) {
  const SweepSpec spec =
      test_spec(SamplerKind::Grid,
                {categorical("t.with.a", {"x"}), param("t.with.lr", FloatDistribution{0, 1})});
  EXPECT_EQ(grid_size(spec), std::nullopt);
}

SweepSpec random_space(std::uint64_t seed) {
  SweepSpec spec = test_spec(
      SamplerKind::Random,
      {param("t.with.lr", FloatDistribution{1e-4, 3e-2, true}),
       categorical("t.with.bs", {64, 128, 256}), param("t.with.epochs", IntDistribution{2, 8}),
       param("t.with.dropout", FloatDistribution{0.0, 0.5, false, 0.1}),
       param("t.with.width", IntDistribution{1, 64, true})});
  spec.sampler.seed = seed;
  return spec;
}

TEST(RandomSamplerTest, SameSeedSameTrialsInAnyOrderOtherSeedOthers) {
  auto first = make_sampler(random_space(0));
  auto again = make_sampler(random_space(0));
  auto other = make_sampler(random_space(1));
  const Study study;
  // Drawn backwards by `again`: a trial depends on (seed, number) only.
  std::vector<std::map<std::string, double>> backwards(50);
  for (int n = 49; n >= 0; --n) backwards[static_cast<std::size_t>(n)] = again->sample(study, n);
  int lr_differs = 0;
  for (int n = 0; n < 50; ++n) {
    const auto trial = first->sample(study, n);
    EXPECT_EQ(trial, backwards[static_cast<std::size_t>(n)]) << "trial " << n;
    lr_differs += trial.at("t.with.lr") != other->sample(study, n).at("t.with.lr");
  }
  EXPECT_EQ(lr_differs, 50);
}

// 3000 draws with seed 0; each bound is the expectation +- about 4 standard
// deviations of a binomial count, so a correct sampler fails with p < 1e-4.
TEST(RandomSamplerTest, DrawsAreUniformInTheirDistributions) {
  auto sampler = make_sampler(random_space(0));
  const Study study;
  std::map<double, int> batch, epochs, dropout;
  int lr_below_midpoint = 0;
  int width_one = 0;
  for (int n = 0; n < 3000; ++n) {
    const auto trial = sampler->sample(study, n);
    const double lr = trial.at("t.with.lr");
    ASSERT_TRUE(lr >= 1e-4 && lr < 3e-2) << lr;
    lr_below_midpoint += lr < std::sqrt(1e-4 * 3e-2);  // the log-space midpoint
    ++batch[trial.at("t.with.bs")];
    ++epochs[trial.at("t.with.epochs")];
    ++dropout[std::round(trial.at("t.with.dropout") * 10) / 10];
    ASSERT_NEAR(trial.at("t.with.dropout") * 10, std::round(trial.at("t.with.dropout") * 10), 1e-9);
    const double width = trial.at("t.with.width");
    ASSERT_TRUE(width >= 1 && width <= 64 && width == std::floor(width)) << width;
    width_one += width == 1;
  }
  EXPECT_NEAR(lr_below_midpoint, 1500, 110);  // sd 27
  ASSERT_EQ(batch.size(), 3u);
  for (const auto& [index, count] : batch) EXPECT_NEAR(count, 1000, 105) << index;  // sd 26
  ASSERT_EQ(epochs.size(), 7u);
  EXPECT_EQ(epochs.begin()->first, 2);
  EXPECT_EQ(epochs.rbegin()->first, 8);
  for (const auto& [value, count] : epochs) EXPECT_NEAR(count, 428.6, 80) << value;  // sd 19
  ASSERT_EQ(dropout.size(), 6u);  // 0.0, 0.1, ..., 0.5
  for (const auto& [value, count] : dropout) EXPECT_NEAR(count, 500, 82) << value;  // sd 20
  // Log-uniform on [0.5, 64.5] rounded: P(1) = ln(1.5 / 0.5) / ln(64.5 / 0.5) = 0.2261.
  EXPECT_NEAR(width_one, 678.3, 92);  // sd 23
}

}  // namespace
}  // namespace kiln::sweep
