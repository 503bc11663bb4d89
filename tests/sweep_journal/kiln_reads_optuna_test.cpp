// Optuna writes a study (study.optimize with pruned, failed and enqueued trials);
// kiln's load() sees the trials Optuna sees.
#include <gtest/gtest.h>
#include <kiln/sweep/journal.h>

#include "sweep_journal/journal_test_support.h"

namespace kiln::sweep {
namespace {

using testing::run_optuna;
using testing::view;

TEST(KilnReadsOptuna, OptimizedStudy) {
  kiln::test::TempDir dir;
  const auto file = dir / "optuna.journal";
  const auto optuna = run_optuna({"optimize", file.string(), "optuna-study"});
  KILN_REQUIRE_PYTHON(optuna);
  ASSERT_TRUE(optuna.json.is_object()) << optuna.output;

  Journal journal(file, "kiln-test");
  const Study study = journal.load("optuna-study");
  nlohmann::json seen = optuna.json;
  seen.erase("optuna");
  EXPECT_EQ(view(study), seen);

  ASSERT_EQ(study.trials.size(), 8u);
  EXPECT_EQ(study.direction, Direction::Minimize);
  EXPECT_EQ(study.user_attrs, (nlohmann::json{{"owner", "optuna"}}));
  // The enqueued trial ran first, with its fixed parameters.
  const Trial& enqueued = study.trials[0];
  EXPECT_EQ(to_external(enqueued.distributions.at("x"), enqueued.params.at("x")), 0.5);
  EXPECT_EQ(to_external(enqueued.distributions.at("n"), enqueued.params.at("n")), 3);
  EXPECT_EQ(to_external(enqueued.distributions.at("kind"), enqueued.params.at("kind")), "b");
  EXPECT_EQ(enqueued.user_attrs, (nlohmann::json{{"enqueued", true}, {"kind_length", 1}}));
  EXPECT_EQ(enqueued.system_attrs["fixed_params"],
            (nlohmann::json{{"x", 0.5}, {"n", 3}, {"kind", "b"}}));
  EXPECT_DOUBLE_EQ(*enqueued.value, 1.5);
  EXPECT_EQ(enqueued.intermediate, (std::map<std::int64_t, double>{{0, 1.5}, {1, 2.5}, {2, 3.5}}));
  EXPECT_EQ(enqueued.distributions.at("x"),
            Distribution(FloatDistribution{0.01, 10.0, true, std::nullopt}));
  EXPECT_EQ(enqueued.distributions.at("kind"),
            Distribution(CategoricalDistribution{{"a", "b", "[64, 32]"}}));
  for (const Trial& trial : study.trials) {
    const TrialState expected = trial.number % 3 == 2 ? TrialState::Pruned
                                : trial.number == 4   ? TrialState::Fail
                                                      : TrialState::Complete;
    EXPECT_EQ(trial.state, expected) << "trial " << trial.number;
    EXPECT_FALSE(trial.datetime_complete.empty());
    if (expected == TrialState::Pruned) {
      // Optuna's tell gives a pruned trial its last intermediate value.
      EXPECT_EQ(trial.intermediate.size(), 2u);
      EXPECT_EQ(trial.value, trial.intermediate.at(1));
    }
    if (expected == TrialState::Fail) {
      EXPECT_FALSE(trial.value.has_value());
    }
  }
  // The best trial by Optuna's values, found here from Python's view.
  int best = -1;
  for (const auto& trial : seen["trials"])
    if (trial["state"] == "COMPLETE" &&
        (best < 0 || trial["value"] < seen["trials"][best]["value"]))
      best = trial["number"];
  ASSERT_NE(study.best_trial(), nullptr);
  EXPECT_EQ(study.best_trial()->number, best);
}

// kiln appends to a study Optuna made, and Optuna reads kiln's trial.
TEST(KilnReadsOptuna, KilnContinuesOptunasStudy) {
  kiln::test::TempDir dir;
  const auto file = dir / "optuna.journal";
  const auto written = run_optuna({"optimize", file.string(), "shared"});
  KILN_REQUIRE_PYTHON(written);
  Journal journal(file, "kiln-test");
  EXPECT_FALSE(journal.create_study("shared", Direction::Minimize));
  EXPECT_THROW(journal.create_study("shared", Direction::Maximize), ConfigError);
  TrialDraft draft;
  draft.params = {{"x", 2.0}, {"n", 1.0}, {"kind", 2.0}};
  draft.distributions = {{"x", FloatDistribution{0.01, 10.0, true, std::nullopt}},
                         {"n", IntDistribution{1, 5, false, 1}},
                         {"kind", CategoricalDistribution{{"a", "b", "[64, 32]"}}}};
  EXPECT_EQ(journal.create_trial("shared", draft), 8);
  EXPECT_TRUE(journal.set_state("shared", 8, TrialState::Complete, 2.0));
  const auto optuna = run_optuna({"view", file.string(), "shared"});
  ASSERT_TRUE(optuna.json.is_object()) << optuna.output;
  ASSERT_EQ(optuna.json["trials"].size(), 9u);
  EXPECT_EQ(optuna.json["trials"][8]["params"],
            (nlohmann::json{{"x", 2.0}, {"n", 1}, {"kind", "[64, 32]"}}));
  EXPECT_EQ(optuna.json["trials"][8]["value"], 2.0);
  nlohmann::json seen = optuna.json;
  seen.erase("optuna");
  EXPECT_EQ(view(journal.load("shared")), seen);
}

}  // namespace
}  // namespace kiln::sweep
