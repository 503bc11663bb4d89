// The replay's rules against Optuna's: ops Optuna ignores (hand-written here, as a
// foreign writer would append them), damaged files, and kiln's own refusals.
#include <gtest/gtest.h>
#include <kiln/sweep/journal.h>

#include "sweep_journal/journal_test_support.h"

namespace kiln::sweep {
namespace {

using testing::append_raw;
using testing::run_optuna;
using testing::view;

const std::string kLogFloat =
    R"("{\"name\": \"FloatDistribution\", \"attributes\": {\"step\": null, \"low\": 0.001, \"high\": 0.1, \"log\": true}}")";
const std::string kWideLogFloat =
    R"("{\"name\": \"FloatDistribution\", \"attributes\": {\"step\": null, \"low\": 0.0001, \"high\": 1.0, \"log\": true}}")";
const std::string kLinearFloat =
    R"("{\"name\": \"FloatDistribution\", \"attributes\": {\"step\": null, \"low\": 0.0, \"high\": 1.0, \"log\": false}}")";
const std::string kInt =
    R"("{\"name\": \"IntDistribution\", \"attributes\": {\"log\": true, \"step\": 1, \"low\": 1, \"high\": 10}}")";

std::string param(int trial, const std::string& distribution, double value) {
  return R"({"op_code":5,"worker_id":"b","trial_id":)" + std::to_string(trial) +
         R"(,"param_name":"lr","param_value_internal":)" + nlohmann::json(value).dump() +
         R"(,"distribution":)" + distribution + "}\n";
}

TEST(JournalReplayRules, IgnoresWhatOptunaIgnores) {
  kiln::test::TempDir dir;
  const auto file = dir / "rules.journal";
  append_raw(
      file,
      R"({"op_code":0,"worker_id":"a","study_name":"rules","directions":[1]})"
      "\n"
      R"({"op_code":0,"worker_id":"b","study_name":"rules","directions":[2]})"
      "\n"
      R"({"op_code":4,"worker_id":"a","study_id":0,"datetime_start":"2026-12-05T10:00:00.000001+02:00"})"
      "\n"
      R"({"op_code":4,"worker_id":"a","study_id":5,"datetime_start":null})"
      "\n" +
          param(0, kLogFloat, 0.01) +
          R"({"op_code":4,"worker_id":"b","study_id":0,"datetime_start":"2026-12-05T10:00:01Z"})"
          "\n" +
          param(1, kInt, 3) + param(1, kLinearFloat, 0.5) + param(1, kWideLogFloat, 0.5) +
          R"({"op_code":7,"worker_id":"a","trial_id":0,"step":0,"intermediate_value":NaN})"
          "\n"
          R"({"op_code":6,"worker_id":"a","trial_id":0,"state":1,"values":[0.5],"datetime_complete":"2026-12-05T09:00:02.500000+01:00"})"
          "\n"
          R"({"op_code":7,"worker_id":"a","trial_id":0,"step":1,"intermediate_value":0.9})"
          "\n"
          R"({"op_code":8,"worker_id":"a","trial_id":0,"user_attr":{"late":true}})"
          "\n"
          R"({"op_code":6,"worker_id":"a","trial_id":0,"state":3,"values":null,"datetime_complete":"2026-12-05T10:00:03+00:00"})"
          "\n" +
          param(0, kLogFloat, 0.02) +
          R"({"op_code":4,"worker_id":"c","study_id":0,"datetime_start":null,"state":4,"system_attrs":{"fixed_params":{}}})"
          "\n"
          R"({"op_code":6,"worker_id":"c","trial_id":2,"state":0,"values":null,"datetime_start":"2026-12-05T10:00:04+00:00"})"
          "\n"
          R"({"op_code":6,"worker_id":"d","trial_id":2,"state":0,"values":null,"datetime_start":"2026-12-05T10:00:05+00:00"})"
          "\n"
          R"({"op_code":10,"worker_id":"rustuna","study_id":0,"trial_ids":[1]})"
          "\n"
          R"({"op_code":3,"worker_id":"a","study_id":0,"system_attr":{"seed":7}})"
          "\n"
          R"({"op_code":1,"worker_id":"a","study_id":9})"
          "\n");

  Journal journal(file, "kiln-test");
  const Study study = journal.load("rules");
  EXPECT_EQ(study.direction, Direction::Minimize);
  EXPECT_EQ(study.system_attrs, (nlohmann::json{{"seed", 7}}));
  ASSERT_EQ(study.trials.size(), 3u);
  const Trial& first = study.trials[0];
  EXPECT_EQ(first.state, TrialState::Complete);
  EXPECT_EQ(first.value, 0.5);
  EXPECT_EQ(first.params.at("lr"), 0.01);
  EXPECT_EQ(first.intermediate.size(), 1u);
  EXPECT_TRUE(std::isnan(first.intermediate.at(0)));
  EXPECT_EQ(first.user_attrs, nlohmann::json::object());
  EXPECT_EQ(first.datetime_start, "2026-12-05T08:00:00.000001");
  EXPECT_EQ(first.datetime_complete, "2026-12-05T08:00:02.500000");
  // Only the distribution of the same class and log scale was taken.
  EXPECT_EQ(study.trials[1].params.at("lr"), 0.5);
  EXPECT_EQ(study.trials[1].distributions.at("lr"),
            Distribution(FloatDistribution{1e-4, 1.0, true, {}}));
  EXPECT_EQ(study.trials[1].datetime_start, "2026-12-05T10:00:01.000000");
  // The first claim of the waiting trial counts.
  EXPECT_EQ(study.trials[2].state, TrialState::Running);
  EXPECT_EQ(study.trials[2].datetime_start, "2026-12-05T10:00:04.000000");

  const auto optuna = run_optuna({"view", file.string(), "rules"});
  KILN_REQUIRE_PYTHON(optuna);
  ASSERT_TRUE(optuna.json.is_object()) << optuna.output;
  nlohmann::json seen = optuna.json;
  seen.erase("optuna");
  EXPECT_EQ(view(study), seen);
}

TEST(JournalReplayRules, DeletedStudyKeepsItsTrialIds) {
  kiln::test::TempDir dir;
  const auto file = dir / "deleted.journal";
  append_raw(
      file,
      R"({"op_code":0,"worker_id":"a","study_name":"s","directions":[2]})"
      "\n"
      R"({"op_code":4,"worker_id":"a","study_id":0,"datetime_start":null})"
      "\n"
      R"({"op_code":1,"worker_id":"a","study_id":0})"
      "\n"
      R"({"op_code":0,"worker_id":"a","study_name":"s","directions":[2]})"
      "\n"
      R"({"op_code":4,"worker_id":"a","study_id":1,"datetime_start":null})"
      "\n"
      R"({"op_code":6,"worker_id":"a","trial_id":1,"state":1,"values":[2.0],"datetime_complete":"2026-12-05T10:00:00+00:00"})"
      "\n"
      R"({"op_code":6,"worker_id":"a","trial_id":0,"state":1,"values":[9.0],"datetime_complete":"2026-12-05T10:00:00+00:00"})"
      "\n");
  Journal journal(file, "kiln-test");
  const Study study = journal.load("s");
  ASSERT_EQ(study.trials.size(), 1u);
  EXPECT_EQ(study.trials[0].number, 0);
  EXPECT_EQ(study.trials[0].value, 2.0);
  // kiln's next trial gets trial_id 2 (the deleted study's trial keeps id 0).
  EXPECT_EQ(journal.create_trial("s", TrialDraft{}), 1);
  EXPECT_EQ(testing::ops_of(file).back()["study_id"], 1);
  journal.set_user_attr("s", 1, "k", 1);
  EXPECT_EQ(testing::ops_of(file).back()["trial_id"], 2);
  const auto optuna = run_optuna({"view", file.string(), "s"});
  KILN_REQUIRE_PYTHON(optuna);
  nlohmann::json seen = optuna.json;
  seen.erase("optuna");
  EXPECT_EQ(view(journal.load("s")), seen);
}

TEST(JournalReplayRules, KilnRefusesOpsOptunaWouldIgnore) {
  kiln::test::TempDir dir;
  const auto file = dir / "refuse.journal";
  Journal journal(file, "kiln-test");
  ASSERT_TRUE(journal.create_study("s", Direction::Maximize));
  TrialDraft draft;
  draft.params = {{"lr", 0.01}};
  draft.distributions = {{"lr", FloatDistribution{1e-3, 0.1, true, {}}}};
  ASSERT_EQ(journal.create_trial("s", draft), 0);
  ASSERT_EQ(journal.create_trial("s", TrialDraft{}), 1);
  const auto lines = testing::ops_of(file).size();
  EXPECT_THROW(journal.set_param("s", 1, "lr", 0.5, FloatDistribution{0, 1, false, {}}), DataError);
  EXPECT_TRUE(journal.set_state("s", 0, TrialState::Complete, 0.9));
  try {
    journal.set_intermediate("s", 0, 3, 0.1);
    FAIL() << "reported into a finished trial";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()),
              "journal " + file.string() +
                  ": study 's': cannot report step 3 of trial 0: trial 0 has already finished "
                  "(COMPLETE) and cannot be updated (Optuna would ignore it)");
  }
  EXPECT_THROW(journal.set_state("s", 7, TrialState::Fail), DataError);
  EXPECT_THROW(journal.set_state("s", 1, TrialState::Complete), InternalError);
  EXPECT_THROW(journal.set_state("s", 1, TrialState::Complete, std::nan("")), InternalError);
  TrialDraft outside = draft;
  outside.params["lr"] = 0.5;
  EXPECT_THROW(journal.create_trial("s", outside), InternalError);
  TrialDraft unaligned;
  unaligned.params = {{"n", 4}};
  unaligned.distributions = {{"n", IntDistribution{0, 10, false, 4}}};
  EXPECT_THROW(journal.create_trial("s", unaligned), InternalError);
  TrialDraft finished;
  finished.state = TrialState::Complete;
  EXPECT_THROW(journal.create_trial("s", finished), InternalError);
  EXPECT_THROW(journal.with_lock("s",
                                 [](JournalTransaction& t) {
                                   t.set_user_attr(1, "half", true);
                                   throw ConfigError("the sampler gave up");
                                 }),
               ConfigError);
  // Nothing of the refused ops reached the file, and the state is intact.
  EXPECT_EQ(testing::ops_of(file).size(), lines + 1);
  const Study study = journal.load("s");
  EXPECT_EQ(study.trials[1].user_attrs, nlohmann::json::object());
  EXPECT_EQ(study.trials[1].state, TrialState::Running);
  EXPECT_THROW(journal.load("missing"), DataError);
}

TEST(JournalReplayRules, NonFiniteValuesTravelAsPythonWritesThem) {
  kiln::test::TempDir dir;
  const auto file = dir / "nan.journal";
  Journal journal(file, "kiln-test");
  ASSERT_TRUE(journal.create_study("s", Direction::Minimize));
  ASSERT_EQ(journal.create_trial("s", TrialDraft{}), 0);
  journal.set_intermediate("s", 0, 0, std::nan(""));
  journal.set_intermediate("s", 0, 1, -INFINITY);
  const auto lines = kiln::test::lines_of(kiln::test::read_text(file));
  EXPECT_EQ(
      lines[2],
      R"({"op_code":7,"worker_id":"kiln-test","intermediate_value":NaN,"step":0,"trial_id":0})");
  EXPECT_EQ(
      lines[3],
      R"({"op_code":7,"worker_id":"kiln-test","intermediate_value":-Infinity,"step":1,"trial_id":0})");
  const Study study = Journal(file, "reader").load("s");
  EXPECT_TRUE(std::isnan(study.trials[0].intermediate.at(0)));
  EXPECT_EQ(study.trials[0].intermediate.at(1), -INFINITY);
}

}  // namespace
}  // namespace kiln::sweep
