// kiln writes a sweep journal; the real Optuna (KILN_PYTHON's optuna) loads it and
// sees what kiln's own load() sees, trial for trial.
#include <gtest/gtest.h>
#include <kiln/sweep/journal.h>

#include <iostream>

#include "sweep_journal/journal_test_support.h"

namespace kiln::sweep {
namespace {

using testing::run_optuna;
using testing::view;

const FloatDistribution kLearningRate{1e-4, 1e-1, true, std::nullopt};
const IntDistribution kLayers{1, 4, false, 1};
const IntDistribution kWidth{16, 128, false, 16};
const CategoricalDistribution kOptimizer{{"adamw", "sgd", nullptr, 3}};
// A structured choice (a model's layers) travels as its compact JSON text.
const CategoricalDistribution kModel{{R"({"layers":[64,32]})", R"({"layers":[128]})"}};

TrialDraft draft(double lr, double layers, double width, double optimizer, double model) {
  TrialDraft draft;
  draft.distributions = {{"lr", kLearningRate},
                         {"layers", kLayers},
                         {"width", kWidth},
                         {"optimizer", kOptimizer},
                         {"model", kModel}};
  draft.params = {
      {"lr", lr}, {"layers", layers}, {"width", width}, {"optimizer", optimizer}, {"model", model}};
  return draft;
}

// Five trials: complete, pruned (intermediates), failed, running, waiting.
void write_small_study(Journal& journal) {
  ASSERT_TRUE(journal.create_study("kiln-study", Direction::Maximize));
  journal.with_lock("kiln-study",
                    [](JournalTransaction& t) { t.set_study_user_attr("dataset", "3f2a"); });
  EXPECT_EQ(journal.create_trial("kiln-study", draft(1e-3, 2, 64, 0, 1)), 0);
  journal.set_intermediate("kiln-study", 0, 0, 0.61);
  journal.set_intermediate("kiln-study", 0, 1, 0.74);
  journal.set_user_attr("kiln-study", 0, "run_id", "9c1d0e");
  EXPECT_TRUE(journal.set_state("kiln-study", 0, TrialState::Complete, 0.8125));
  EXPECT_EQ(journal.create_trial("kiln-study", draft(0.05, 4, 16, 1, 0)), 1);
  journal.set_intermediate("kiln-study", 1, 0, 0.25);
  journal.set_intermediate("kiln-study", 1, 1, 0.3);
  EXPECT_TRUE(journal.set_state("kiln-study", 1, TrialState::Pruned, 0.3));
  EXPECT_EQ(journal.create_trial("kiln-study", draft(2e-4, 1, 128, 2, 0)), 2);
  journal.set_user_attr("kiln-study", 2, "error", "loss is NaN at step 12");
  EXPECT_TRUE(journal.set_state("kiln-study", 2, TrialState::Fail));
  EXPECT_EQ(journal.create_trial("kiln-study", draft(1e-2, 3, 32, 3, 1)), 3);
  TrialDraft waiting = draft(1e-4, 1, 16, 0, 0);
  waiting.state = TrialState::Waiting;
  waiting.system_attrs = {{"fixed_params", {{"lr", 1e-4}}}};
  waiting.user_attrs = {{"source", "enqueued"}};
  EXPECT_EQ(journal.create_trial("kiln-study", waiting), 4);
}

TEST(OptunaReadsKiln, SmallStudyAsKilnSeesIt) {
  kiln::test::TempDir dir;
  const auto file = dir / "sweep.journal";
  Journal journal(file, "kiln-test");
  write_small_study(journal);

  const Study study = journal.load("kiln-study");
  ASSERT_EQ(study.trials.size(), 5u);
  EXPECT_EQ(study.trials[0].value, 0.8125);
  EXPECT_EQ(study.trials[1].intermediate, (std::map<std::int64_t, double>{{0, 0.25}, {1, 0.3}}));
  EXPECT_EQ(to_external(kModel, study.trials[0].params.at("model")), R"({"layers":[128]})");
  EXPECT_EQ(study.trials[4].state, TrialState::Waiting);
  EXPECT_TRUE(study.trials[4].datetime_start.empty());
  EXPECT_FALSE(study.trials[3].datetime_start.empty());
  EXPECT_TRUE(study.trials[3].datetime_complete.empty());

  const auto optuna = run_optuna({"view", file.string(), "kiln-study"});
  KILN_REQUIRE_PYTHON(optuna);
  ASSERT_TRUE(optuna.json.is_object()) << optuna.output;
  std::cout << "checked with optuna " << optuna.json["optuna"] << "\n";
  nlohmann::json seen = optuna.json;
  seen.erase("optuna");
  EXPECT_EQ(view(study), seen);
  // A few values spelled out, so that the comparison cannot pass on two empty views.
  ASSERT_EQ(seen["trials"].size(), 5u);
  EXPECT_EQ(seen["direction"], "MAXIMIZE");
  EXPECT_EQ(seen["user_attrs"], (nlohmann::json{{"dataset", "3f2a"}}));
  std::vector<std::string> states;
  for (const auto& trial : seen["trials"]) states.push_back(trial["state"]);
  EXPECT_EQ(states, (std::vector<std::string>{"COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"}));
  EXPECT_EQ(seen["trials"][0]["params"], (nlohmann::json{{"lr", 1e-3},
                                                         {"layers", 2},
                                                         {"width", 64},
                                                         {"optimizer", "adamw"},
                                                         {"model", R"({"layers":[128]})"}}));
  EXPECT_EQ(seen["trials"][2]["params"]["optimizer"], nullptr);
  EXPECT_EQ(seen["trials"][3]["params"]["optimizer"], 3);
  EXPECT_EQ(seen["trials"][0]["distributions"]["lr"],
            (nlohmann::json{
                {"name", "FloatDistribution"},
                {"attributes", {{"step", nullptr}, {"low", 1e-4}, {"high", 0.1}, {"log", true}}}}));
  EXPECT_EQ(seen["trials"][0]["distributions"]["width"]["attributes"]["step"], 16);
  EXPECT_EQ(seen["trials"][0]["value"], 0.8125);
  EXPECT_EQ(seen["trials"][1]["value"], 0.3);
  EXPECT_EQ(seen["trials"][1]["intermediate"], (nlohmann::json{{"0", 0.25}, {"1", 0.3}}));
  EXPECT_EQ(seen["trials"][0]["user_attrs"], (nlohmann::json{{"run_id", "9c1d0e"}}));
  EXPECT_EQ(seen["trials"][4]["system_attrs"], (nlohmann::json{{"fixed_params", {{"lr", 1e-4}}}}));
  EXPECT_EQ(seen["trials"][4]["datetime_start"], nullptr);
}

TEST(OptunaReadsKiln, LinesHaveOptunasFields) {
  kiln::test::TempDir dir;
  const auto file = dir / "sweep.journal";
  Journal journal(file, "kiln-test");
  write_small_study(journal);
  const auto ops = testing::ops_of(file);
  ASSERT_EQ(ops.size(), 16u);
  EXPECT_EQ(kiln::test::lines_of(kiln::test::read_text(file))[0],
            R"({"op_code":0,"worker_id":"kiln-test","study_name":"kiln-study","directions":[2]})");
  EXPECT_EQ(ops[1], (nlohmann::json{{"op_code", 2},
                                    {"worker_id", "kiln-test"},
                                    {"study_id", 0},
                                    {"user_attr", {{"dataset", "3f2a"}}}}));
  const nlohmann::json& create = ops[2];
  EXPECT_EQ(create["op_code"], 4);
  EXPECT_EQ(create["state"], 0);
  EXPECT_EQ(create["params"]["optimizer"], 0.0);
  EXPECT_EQ(
      create["distributions"]["lr"],
      R"({"name": "FloatDistribution", "attributes": {"step": null, "low": 0.0001, "high": 0.1, "log": true}})");
  EXPECT_EQ(
      create["distributions"]["layers"],
      R"({"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 1, "high": 4}})");
  EXPECT_FALSE(create.contains("datetime_complete"));
  // Optuna's format: "2026-12-05T10:09:55.123456+00:00".
  const std::string start = create["datetime_start"];
  ASSERT_EQ(start.size(), 32u) << start;
  EXPECT_EQ(start.substr(26), "+00:00");
  EXPECT_EQ(ops[3], (nlohmann::json{{"op_code", 7},
                                    {"worker_id", "kiln-test"},
                                    {"trial_id", 0},
                                    {"step", 0},
                                    {"intermediate_value", 0.61}}));
  const nlohmann::json& complete = ops[6];
  EXPECT_EQ(complete["op_code"], 6);
  EXPECT_EQ(complete["state"], 1);
  EXPECT_EQ(complete["values"], nlohmann::json::array({0.8125}));
  EXPECT_TRUE(complete.contains("datetime_complete"));
  EXPECT_EQ(ops[15]["state"], 4);
  EXPECT_EQ(ops[15]["datetime_start"], nullptr);
}

// Optuna's study.optimize pops the waiting trial kiln enqueued, and kiln sees it run.
TEST(OptunaReadsKiln, OptunaRunsTheTrialKilnEnqueued) {
  kiln::test::TempDir dir;
  const auto file = dir / "sweep.journal";
  Journal journal(file, "kiln-test");
  ASSERT_TRUE(journal.create_study("pop", Direction::Minimize));
  TrialDraft waiting;
  waiting.state = TrialState::Waiting;
  waiting.params = {{"lr", 0.02}};
  waiting.distributions = {{"lr", kLearningRate}};
  waiting.system_attrs = {{"fixed_params", {{"lr", 0.02}}}};
  ASSERT_EQ(journal.create_trial("pop", waiting), 0);

  const auto optuna = run_optuna({"pop", file.string(), "pop"});
  KILN_REQUIRE_PYTHON(optuna);
  const Study study = journal.load("pop");
  ASSERT_EQ(study.trials.size(), 1u);
  EXPECT_EQ(study.trials[0].state, TrialState::Complete);
  EXPECT_DOUBLE_EQ(*study.trials[0].value, 0.2);
  EXPECT_FALSE(study.trials[0].datetime_start.empty());
  nlohmann::json seen = optuna.json;
  seen.erase("optuna");
  EXPECT_EQ(view(study), seen);
  // Optuna finished it: kiln may not touch it any more.
  EXPECT_THROW(journal.set_state("pop", 0, TrialState::Running), DataError);
}

}  // namespace
}  // namespace kiln::sweep
