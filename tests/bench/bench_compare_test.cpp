// The rules of `kiln bench --compare` (bench_record.h) on hand-computed cases.
#include <gtest/gtest.h>

#include <kiln/error.h>

#include <cmath>

#include "bench_record.h"

namespace kiln::cli::bench {
namespace {

Measurement time_us(const std::string& name, std::vector<double> values, bool gates = true) {
  return {name, "us", false, gates, std::move(values)};
}

BenchRecord record_of(std::vector<Measurement> measurements) {
  BenchRecord record;
  record.suites = {"ops", "train"};
  record.repeat = 3;
  record.measurements = std::move(measurements);
  return record;
}

const Compared& row_named(const std::vector<Compared>& rows, const std::string& name) {
  for (const Compared& row : rows)
    if (row.name == name) return row;
  throw std::runtime_error("no row " + name);
}

TEST(BenchStatistics, MedianAndSpread) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median({4, 1, 2, 3}), 2.5);
  EXPECT_TRUE(std::isnan(median({})));
  EXPECT_DOUBLE_EQ(relative_spread({100}), 0);
  // Deviations 10, 0, 10 from the median 100: their median over 100.
  EXPECT_DOUBLE_EQ(relative_spread({90, 100, 110}), 0.1);
  EXPECT_DOUBLE_EQ(relative_spread({100, 101, 99, 100, 300}), 0.01);  // one outlier
}

// Spreads 0.01 and 0.016 give 3 * 0.026 = 0.078, under the 0.2 threshold: the
// threshold decides. 125/100 is past 1.2; 118/100 is not.
TEST(BenchCompare, ThresholdDecidesWhenRepeatsAgree) {
  const auto before =
      record_of({time_us("ops/a", {99, 100, 101}), time_us("ops/b", {99, 100, 101})});
  const auto now =
      record_of({time_us("ops/a", {123, 125, 128}), time_us("ops/b", {116, 118, 120.72})});
  const auto rows = compare(before, now, {});
  const Compared& a = row_named(rows, "ops/a");
  EXPECT_DOUBLE_EQ(a.slowdown, 1.25);
  EXPECT_DOUBLE_EQ(a.allowance, 0.2);
  EXPECT_EQ(a.verdict, Verdict::Regressed);
  EXPECT_EQ(row_named(rows, "ops/b").verdict, Verdict::Same);
  EXPECT_TRUE(any_regression(rows));
}

// Spreads 0.1 and 0.1: allowance 3 * 0.2 = 0.6, so 1.5x is noise and 1.9x is not.
TEST(BenchCompare, SpreadWidensTheAllowance) {
  const auto before =
      record_of({time_us("ops/a", {90, 100, 110}), time_us("ops/b", {90, 100, 110})});
  const auto now =
      record_of({time_us("ops/a", {135, 150, 165}), time_us("ops/b", {171, 190, 209})});
  const auto rows = compare(before, now, {});
  EXPECT_NEAR(row_named(rows, "ops/a").allowance, 0.6, 1e-12);
  EXPECT_EQ(row_named(rows, "ops/a").verdict, Verdict::Same);
  EXPECT_EQ(row_named(rows, "ops/b").verdict, Verdict::Regressed);
}

// Spreads of 0.2 each: allowance 1.2 >= 1, so not even a 2x slowdown would show.
TEST(BenchCompare, TooNoisyToJudgeIsSaidAndDoesNotGate) {
  const auto before = record_of({time_us("ops/a", {80, 100, 120})});
  const auto now = record_of({time_us("ops/a", {240, 300, 360})});
  const auto rows = compare(before, now, {});
  EXPECT_EQ(rows[0].verdict, Verdict::TooNoisy);
  EXPECT_FALSE(any_regression(rows));
}

// For a rate, slower is smaller: 1000 -> 500 samples/s is a 2x slowdown.
TEST(BenchCompare, RatesCountSlowerWhenSmaller) {
  Measurement rate{"train/mlp/samples_per_s", "samples/s", true, true, {1000, 1000, 1000}};
  const auto before = record_of({rate});
  rate.values = {500, 500, 500};
  const auto rows = compare(before, record_of({rate}), {});
  EXPECT_DOUBLE_EQ(rows[0].slowdown, 2);
  EXPECT_EQ(rows[0].verdict, Verdict::Regressed);
  rate.values = {2000, 2000, 2000};
  EXPECT_EQ(compare(before, record_of({rate}), {})[0].verdict, Verdict::Faster);
}

// The peer getting slower, or a ratio moving, is shown but is not kiln's regression.
TEST(BenchCompare, UngatedFiguresNeverRegress) {
  const auto before = record_of({time_us("train/x", {100, 100, 100}, false)});
  const auto now = record_of({time_us("train/x", {300, 300, 300}, false)});
  const auto rows = compare(before, now, {});
  EXPECT_EQ(rows[0].verdict, Verdict::Slower);
  EXPECT_FALSE(any_regression(rows));
}

TEST(BenchCompare, NewAndMissingMeasurements) {
  BenchRecord before = record_of({time_us("ops/gone", {1}), time_us("dist/other", {1})});
  BenchRecord now = record_of({time_us("ops/new", {1})});
  now.suites = {"ops"};
  const auto rows = compare(before, now, {});
  ASSERT_EQ(rows.size(), 2u);  // dist/other: a suite not run now, left out
  EXPECT_EQ(row_named(rows, "ops/new").verdict, Verdict::New);
  EXPECT_EQ(row_named(rows, "ops/gone").verdict, Verdict::Missing);
  EXPECT_FALSE(any_regression(rows));
}

TEST(BenchRecordJson, RoundTripsAndRefusesOtherFiles) {
  BenchRecord record = record_of({time_us("ops/a", {1, 2, 3})});
  record.fingerprint = {{"cpu", "x"}};
  record.notes = {"gpu: skipped"};
  const BenchRecord back = record_from_json(to_json(record), "bench.json");
  EXPECT_EQ(back.suites, record.suites);
  EXPECT_EQ(back.fingerprint, record.fingerprint);
  ASSERT_EQ(back.measurements.size(), 1u);
  EXPECT_EQ(back.measurements[0].values, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(back.notes, record.notes);
  EXPECT_THROW(record_from_json(nlohmann::json{{"format", "other"}}, "x.json"), DataError);
  auto broken = to_json(record);
  broken["measurements"][0].erase("values");
  try {
    record_from_json(broken, "bench.json");
    FAIL() << "no error";
  } catch (const DataError& error) {
    EXPECT_STREQ(error.what(), "bench.json: measurement: 'values' is missing");
  }
}

TEST(BenchRecordJson, ComparisonRoundTrips) {
  const auto rows =
      compare(record_of({time_us("ops/a", {100})}), record_of({time_us("ops/a", {300})}), {});
  const auto back = comparison_from_json(to_json(rows), "comparison.json");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].verdict, Verdict::Regressed);
  EXPECT_DOUBLE_EQ(back[0].slowdown, 3);
}

TEST(BenchMetricKey, ReplacesWhatMlflowRefuses) {
  EXPECT_EQ(metric_key("ops/BM_Gemm<float>/128:2"), "ops/BM_Gemm_float_/128_2");
  EXPECT_EQ(metric_key("train/mlp/samples_per_s"), "train/mlp/samples_per_s");
}

}  // namespace
}  // namespace kiln::cli::bench
