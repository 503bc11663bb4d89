// ASHA as Optuna's SuccessiveHalvingPruner decides it, on a hand-computed example:
// 9 trials, eta = 3, rungs at epochs 1, 3, 9 (max_epochs 10).
#include <kiln/sweep/asha.h>

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace kiln::sweep {
namespace {

const AshaConfig kConfig{1, 10, 3};

class AshaTest : public ::testing::Test {
 protected:
  void start(Direction direction, int trials) {
    study_.direction = direction;
    for (int i = 0; i < trials; ++i) {
      study_.trials.emplace_back();
      study_.trials.back().number = i;
    }
  }
  bool report(int trial, std::int64_t epoch, double value) {
    study_.trials[static_cast<std::size_t>(trial)].intermediate[epoch] = value;
    return should_stop(study_, kConfig, trial, epoch);
  }
  Study study_;
};

// Values at epoch 1, reported by trials 0..8 in order.
const double kRung0[] = {0.5, 0.3, 0.7, 0.6, 0.2, 0.9, 0.4, 0.8, 0.1};

TEST(AshaRungsTest, GeometricBelowMaxEpochs) {
  EXPECT_EQ(rungs(AshaConfig{1, 10, 3}), (std::vector<std::int64_t>{1, 3, 9}));
  EXPECT_EQ(rungs(AshaConfig{1, 9, 3}), (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(rungs(AshaConfig{2, 100, 4}), (std::vector<std::int64_t>{2, 8, 32}));
  EXPECT_EQ(rungs(AshaConfig{1, 1, 3}), (std::vector<std::int64_t>{}));
  EXPECT_EQ(completed_rung_key(2), "completed_rung_2");
}

// Maximize. Rung 0, n values so far, keep if value >= the (max(n/3 - 1, 0))-th best:
//   t0 0.5 n1 best 0.5 keep | t1 0.3 n2 best 0.5 stop | t2 0.7 n3 best 0.7 keep
//   t3 0.6 n4 best 0.7 stop | t4 0.2 n5 stop | t5 0.9 n6 2nd best 0.7 keep
//   t6 0.4 n7 2nd 0.7 stop | t7 0.8 n8 2nd 0.8 keep | t8 0.1 n9 3rd 0.7 stop
// Rung 1 (epoch 3), survivors 0, 2, 5, 7 with 0.75, 0.55, 0.95, 0.85:
//   t0 keep | t2 n2 best 0.75 stop | t5 n3 best 0.95 keep | t7 n4 best 0.95 stop
TEST_F(AshaTest, MaximizeStopsTheHandComputedTrials) {
  start(Direction::Maximize, 9);
  std::vector<int> stopped_at_rung0;
  for (int t = 0; t < 9; ++t)
    if (report(t, 1, kRung0[t])) stopped_at_rung0.push_back(t);
  EXPECT_EQ(stopped_at_rung0, (std::vector<int>{1, 3, 4, 6, 8}));

  std::vector<int> stopped_at_rung1;
  const std::map<int, double> rung1 = {{0, 0.75}, {2, 0.55}, {5, 0.95}, {7, 0.85}};
  for (const auto& [t, value] : rung1) {
    EXPECT_FALSE(report(t, 2, value - 0.1)) << "epoch 2 is no rung";
    if (report(t, 3, value)) stopped_at_rung1.push_back(t);
  }
  EXPECT_EQ(stopped_at_rung1, (std::vector<int>{2, 7}));

  // Optuna's record of each judged value, under its own keys.
  EXPECT_EQ(study_.trials[0].system_attrs["completed_rung_0"], 0.5);
  EXPECT_EQ(study_.trials[0].system_attrs["completed_rung_1"], 0.75);
  EXPECT_EQ(study_.trials[1].system_attrs["completed_rung_0"], 0.3);
  EXPECT_FALSE(study_.trials[1].system_attrs.contains("completed_rung_1"));

  EXPECT_FALSE(report(0, 9, 0.8));   // alone at rung 2: the best
  EXPECT_FALSE(report(0, 10, 0.7));  // max_epochs: no rung, the trial completes
}

// Minimize, same values. Rung 0: keep if value <= the (max(n/3 - 1, 0))-th smallest:
//   t0 keep | t1 0.3 n2 min 0.3 keep | t2 0.7 stop | t3 0.6 stop | t4 0.2 n5 min 0.2 keep
//   t5 0.9 n6 2nd 0.3 stop | t6 0.4 n7 2nd 0.3 stop | t7 0.8 stop | t8 0.1 n9 3rd 0.3 keep
// Rung 1, survivors 0, 1, 4, 8 with 0.45, 0.25, 0.15, 0.35:
//   t0 keep | t1 n2 min 0.25 keep | t4 n3 min 0.15 keep | t8 n4 min 0.15 stop
TEST_F(AshaTest, MinimizeStopsTheHandComputedTrials) {
  start(Direction::Minimize, 9);
  std::vector<int> stopped_at_rung0;
  for (int t = 0; t < 9; ++t)
    if (report(t, 1, kRung0[t])) stopped_at_rung0.push_back(t);
  EXPECT_EQ(stopped_at_rung0, (std::vector<int>{2, 3, 5, 6, 7}));

  std::vector<int> stopped_at_rung1;
  const std::map<int, double> rung1 = {{0, 0.45}, {1, 0.25}, {4, 0.15}, {8, 0.35}};
  for (const auto& [t, value] : rung1)
    if (report(t, 3, value)) stopped_at_rung1.push_back(t);
  EXPECT_EQ(stopped_at_rung1, (std::vector<int>{8}));
}

// A trial whose first report is past two rungs is judged at both, with that value.
TEST_F(AshaTest, AReportPastSeveralRungsIsJudgedAtEach) {
  start(Direction::Maximize, 4);
  EXPECT_FALSE(report(0, 1, 0.5));
  EXPECT_FALSE(report(0, 3, 0.6));
  EXPECT_FALSE(report(1, 1, 0.7));
  EXPECT_FALSE(report(1, 3, 0.8));
  // Trial 2 first reports at epoch 3 with 0.65: rung 0 has {0.5, 0.7, 0.65}, best 0.7,
  // so it stops there and rung 1 never sees it.
  EXPECT_TRUE(report(2, 3, 0.65));
  EXPECT_EQ(study_.trials[2].system_attrs["completed_rung_0"], 0.65);
  EXPECT_FALSE(study_.trials[2].system_attrs.contains("completed_rung_1"));
  // Trial 3 reports 0.9 at epoch 4: best at rung 0 (of 4, rank 0) and at rung 1 (of 3).
  EXPECT_FALSE(report(3, 4, 0.9));
  EXPECT_EQ(study_.trials[3].system_attrs["completed_rung_1"], 0.9);
}

TEST_F(AshaTest, NanStopsWithoutARecord) {
  start(Direction::Minimize, 1);
  EXPECT_TRUE(report(0, 1, std::nan("")));
  EXPECT_TRUE(study_.trials[0].system_attrs.empty());
}

}  // namespace
}  // namespace kiln::sweep
