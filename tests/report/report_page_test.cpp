// Run and model reports rendered from a registry written directly through
// MlflowStore: every section, NaN as gaps, bad input as errors or notes.
#include <kiln/error.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/report/report.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "report/report_test_support.h"
#include "support/support.h"

namespace kiln::report {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr const char* kEvaluation = R"({
  "accuracy": 0.75, "macro_f1": 0.7, "loss": 0.6, "samples": 8,
  "confusion": [[3, 1, 0], [0, 2, 0], [1, 0, 1]],
  "class_names": ["cat", "dog", "bird"],
  "dataset_id": "test0123456789",
  "gate": {"passed": true, "checks": [{"kind": "threshold", "metric": "accuracy",
                                       "value": 0.75, "threshold": 0.5, "passed": true}]}
})";

class ReportTest : public ::testing::Test {
 protected:
  test::TempDir dir_;  // before the store, which is made from it
  registry::MlflowStore store{dir_ / "registry"};

  std::unique_ptr<registry::MlflowRun> new_run() {
    return store.start_run(store.ensure_experiment("reports"), "report-test");
  }

  // A run as a train + evaluate + register pipeline leaves it.
  std::string full_run() {
    auto run = new_run();
    for (int step = 10; step <= 50; step += 10) {
      run->log_metric("train/loss", 2.0 / step, step);
      run->log_metric("train/accuracy", 0.5 + step / 200.0, step);
      run->log_metric("train/lr", 1e-3, step);
      run->log_metric("train/samples_per_s", 40000 + step, step);
      run->log_metric("train/step_ms", 1.5, step);
      run->log_metric("train/data_wait_ms", 0.1, step);
      run->log_metric("train/epoch", step / 20, step);
      run->log_metric("gpu/memory_mb", 100 + step, step);
    }
    run->log_metric("eval/loss", 0.6, 0);
    run->log_metric("eval/accuracy", 0.75, 0);
    run->log_param("train.with.lr", "0.001");
    run->set_tag("kiln.dataset.train_data", "train0123456789");
    run->set_tag("kiln.stage.train", "ran abcdef");
    test::write_text(run->artifact_dir() / "evaluation" / "evaluate.json", kEvaluation);
    // Registered by a later run that found this one's model in the step cache.
    const auto later = new_run();
    store.create_model_version(
        "net", later->run_id(), "file:///nowhere", "first",
        {{"kiln.train_run_id", run->run_id()}, {"kiln.eval.accuracy", "0.75"}});
    run->end(registry::RunStatus::Finished);
    return run->run_id();
  }
};

TEST_F(ReportTest, RunReportHasEverySectionAndPlot) {
  const std::string html = render_run_report(dir_ / "registry", full_run());
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  for (const char* section : {">Run<", ">Metrics<", ">Evaluation: evaluate<", ">Data and lineage<",
                              ">Parameters<", ">Tags<"})
    EXPECT_THAT(html, HasSubstr(section));
  const auto plots = test::plots_in(html);
  const std::map<std::string, int> curves = {{"Loss", 2},
                                             {"Accuracy", 2},
                                             {"Learning rate", 1},
                                             {"Throughput", 1},
                                             {"Step time and data wait", 2},
                                             {"gpu/memory_mb", 1}};
  ASSERT_EQ(plots.size(), curves.size()) << "train/epoch gets no plot of its own";
  for (const auto& [title, expected] : curves) {
    ASSERT_TRUE(plots.contains(title)) << title;
    EXPECT_EQ(plots.at(title).paths, expected) << title;
    EXPECT_EQ(plots.at(title).declared_curves, expected) << title;
  }
  EXPECT_EQ(plots.at("Loss").markers, 1) << "eval/loss, one point";
  EXPECT_THAT(html, HasSubstr("eval/loss (final model)"));
  EXPECT_EQ(test::count_of(html, "<rect class=\"cell\""), 9);
  for (const char* name : {">cat</text>", ">dog</text>", ">bird</text>"})
    EXPECT_EQ(test::count_of(html, name), 2) << name;
  EXPECT_THAT(html, HasSubstr("train0123456789"));
  EXPECT_THAT(html, HasSubstr("trained by this run"));
  EXPECT_THAT(html, HasSubstr("train.with.lr"));
  EXPECT_THAT(test::external_references(html), IsEmpty());
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
}

TEST_F(ReportTest, NanMetricValuesAreGaps) {
  auto run = new_run();
  const double nan = std::nan("");
  const std::vector<double> losses = {1.0, 0.8, nan, nan, 0.5, 0.4, nan};
  for (std::size_t i = 0; i < losses.size(); ++i)
    run->log_metric("train/loss", losses[i], static_cast<std::int64_t>(i + 1));
  run->log_metric("train/accuracy", nan, 1);
  const std::string html = render_run_report(dir_ / "registry", run->run_id());
  const auto plots = test::plots_in(html);
  ASSERT_TRUE(plots.contains("Loss"));
  const std::string& d = plots.at("Loss").path_data.at(0);
  EXPECT_EQ(test::count_of(d, "M"), 2) << d;
  EXPECT_EQ(test::count_of(d, "L"), 2) << d;
  EXPECT_THAT(html, HasSubstr("train/accuracy (no finite values)"));
  EXPECT_THAT(html, HasSubstr("<td>train/loss</td><td>nan</td><td>7</td><td>7</td><td>3</td>"));
}

TEST_F(ReportTest, RunWithoutMetricsStillRenders) {
  auto run = new_run();
  run->log_param("p", "1");
  const std::string html = render_run_report(dir_ / "registry", run->run_id());
  EXPECT_THAT(html, HasSubstr("No metrics were logged in this run."));
  EXPECT_THAT(html, HasSubstr("RUNNING"));
}

TEST_F(ReportTest, UnreadableEvaluationIsNotedNotFatal) {
  auto run = new_run();
  run->log_metric("train/loss", 1, 1);
  test::write_text(run->artifact_dir() / "evaluation" / "broken.json", "{ not json");
  test::write_text(run->artifact_dir() / "evaluation" / "plain.json", R"({"accuracy": 0.5})");
  const std::string html = render_run_report(dir_ / "registry", run->run_id());
  EXPECT_THAT(html, HasSubstr("Could not read the evaluation"));
  EXPECT_THAT(html, HasSubstr("No confusion matrix in this evaluation."));
}

TEST_F(ReportTest, UnknownRunIsAConfigError) {
  new_run();
  EXPECT_THROW(render_run_report(dir_ / "registry", "0123456789abcdef0123456789abcdef"),
               ConfigError);
}

TEST_F(ReportTest, WriteRunReportWritesTheFile) {
  const std::string id = full_run();
  const fs::path file = dir_ / "out" / "report.html";
  write_run_report(dir_ / "registry", id, file);
  EXPECT_THAT(test::read_text(file), HasSubstr("<svg class=\"plot\""));
}

TEST_F(ReportTest, ModelReportComparesVersions) {
  auto run = new_run();
  const auto version = [&](const char* accuracy, const char* test_set,
                           std::map<std::string, std::string> more) {
    more["kiln.eval.accuracy"] = accuracy;
    more["kiln.eval.loss"] = "0.5";
    more["kiln.test_dataset"] = test_set;
    store.create_model_version("net", run->run_id(), "file:///nowhere", "", more);
  };
  version("0.8", "aaaa", {{"kiln.eval.macro_f1", "0.79"}});
  version("nan", "aaaa", {});
  version("0.9", "bbbb", {{"kiln.eval.macro_f1", "0.88"}});
  store.set_alias("net", "champion", 3);
  const std::string html = render_model_report(dir_ / "registry", "net");
  EXPECT_THAT(html, HasSubstr("champion -&gt; version 3"));
  EXPECT_EQ(test::count_of(html, "<tr><td>"), 3);
  EXPECT_THAT(html, HasSubstr("2 different dataset versions"));
  const auto plots = test::plots_in(html);
  ASSERT_TRUE(plots.contains("Scores by version"));
  ASSERT_TRUE(plots.contains("Loss by version"));
  EXPECT_EQ(plots.at("Scores by version").paths, 2);  // accuracy, macro_f1
  EXPECT_EQ(plots.at("Loss by version").paths, 1);
  EXPECT_EQ(plots.at("Scores by version").markers, 4)
      << "2 accuracy + 2 macro_f1, NaN and missing are gaps";
  EXPECT_THAT(test::external_references(html), IsEmpty());
}

TEST_F(ReportTest, UnknownModelIsAConfigError) {
  EXPECT_THROW(render_model_report(dir_ / "registry", "nothing"), ConfigError);
}

}  // namespace
}  // namespace kiln::report
