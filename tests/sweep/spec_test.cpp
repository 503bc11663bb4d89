// parse_sweep: a valid `sweep:` section's values, and each error as its exact line
// with file:line:col.
#include <kiln/error.h>
#include <kiln/sweep/spec.h>

#include <gtest/gtest.h>

#include "support/support.h"

namespace kiln::sweep {
namespace {
using nlohmann::json;

// Lines 1-6: the stages; 7 `sweep:`, 8 `space:`, 9 the parameter under test,
// 10 the objective, 11 the trials, 12 on the extra lines.
const std::string kStages =
    "stages:\n  train:\n    uses: toy\n  evaluate:\n    uses: toy\n    needs: train\n";
const std::string kLr = "    train.with.lr: {loguniform: [1.0e-4, 3.0e-2]}";
const std::string kObjective = "  objective: {metric: train/val_accuracy, direction: maximize}";
const std::string kTrials = "  trials: 4";

class SweepSpecTest : public ::testing::Test {
 protected:
  std::optional<SweepSpec> parse(const std::string& text) {
    const auto file = dir_ / "p.yaml";
    test::write_text(file, text);
    return parse_sweep(parse_pipeline(file));
  }
  std::string error_of(const std::string& space, const std::string& objective = kObjective,
                       const std::string& trials = kTrials, const std::string& extra = "") {
    try {
      parse(kStages + "sweep:\n  space:\n" + space + "\n" + objective + "\n" + trials + "\n" +
            extra);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  }
  std::string error_with(const std::string& extra) {
    return error_of(kLr, kObjective, kTrials, extra);
  }
  test::TempDir dir_;
};

TEST_F(SweepSpecTest, ParsesEveryDistributionAndSetting) {
  const auto spec =
      parse(kStages +
            "sweep:\n"
            "  space:\n" +
            kLr +
            "\n"
            "    train.with.batch_size: {choice: [64, 128, 256]}\n"
            "    train.with.model: {choice: [{layers: [flatten, {linear: {out: 10}}]}, [1, 2]]}\n"
            "    train.with.dropout: {uniform: [0.0, 0.5], step: 0.1}\n"
            "    train.with.epochs: {int: [2, 8]}\n"
            "    train.with.width: {int: [1, 64], log: true}\n"
            "    train.with.depth: {int: [2, 10], step: 2}\n"
            "  objective: {metric: train/val_accuracy, direction: maximize}\n"
            "  sampler: {type: tpe, seed: 7, multivariate: true}\n"
            "  pruner: {type: asha, min_epochs: 1, max_epochs: 6, reduction_factor: 3}\n"
            "  trials: 24\n"
            "  time_limit: 3600\n"
            "  workers: 2\n");
  ASSERT_TRUE(spec.has_value());
  ASSERT_EQ(spec->params.size(), 7u);
  const auto& lr = spec->params[0];
  EXPECT_EQ(lr.path, "train.with.lr");
  EXPECT_EQ(lr.stage(), "train");
  EXPECT_EQ(lr.param(), "lr");
  EXPECT_EQ(lr.origin, (dir_ / "p.yaml").string() + ":9:5");
  EXPECT_EQ(lr.distribution, Distribution(FloatDistribution{1.0e-4, 3.0e-2, true, std::nullopt}));
  EXPECT_TRUE(lr.choice_values.empty());

  const auto& batch = spec->params[1];
  EXPECT_EQ(batch.distribution, Distribution(CategoricalDistribution{{64, 128, 256}}));
  EXPECT_EQ(batch.choice_values, (std::vector<json>{64, 128, 256}));
  EXPECT_EQ(value_of(batch, 2.0), json(256));

  const auto& model = spec->params[2];
  const json first = json::parse(R"({"layers": ["flatten", {"linear": {"out": 10}}]})");
  EXPECT_EQ(model.distribution,
            Distribution(CategoricalDistribution{
                {json(R"({"layers":["flatten",{"linear":{"out":10}}]})"), json("[1,2]")}}));
  EXPECT_EQ(value_of(model, 0.0), first);
  EXPECT_EQ(value_of(model, 1.0), json::parse("[1, 2]"));

  EXPECT_EQ(spec->params[3].distribution, Distribution(FloatDistribution{0.0, 0.5, false, 0.1}));
  EXPECT_EQ(spec->params[4].distribution, Distribution(IntDistribution{2, 8, false, 1}));
  EXPECT_EQ(spec->params[5].distribution, Distribution(IntDistribution{1, 64, true, 1}));
  EXPECT_EQ(spec->params[6].distribution, Distribution(IntDistribution{2, 10, false, 2}));
  EXPECT_EQ(value_of(spec->params[4], 5.0), json(5));
  EXPECT_TRUE(value_of(spec->params[4], 5.0).is_number_integer());
  EXPECT_EQ(value_of(lr, 0.0025), json(0.0025));

  EXPECT_EQ(spec->objective.metric, "train/val_accuracy");
  EXPECT_EQ(spec->objective.direction, Direction::Maximize);
  EXPECT_EQ(spec->objective.origin, (dir_ / "p.yaml").string() + ":16:23");
  EXPECT_EQ(spec->sampler.kind, SamplerKind::Tpe);
  EXPECT_EQ(spec->sampler.seed, 7u);
  EXPECT_TRUE(spec->sampler.multivariate);
  EXPECT_EQ(spec->pruner.kind, PrunerKind::Asha);
  EXPECT_EQ(spec->pruner.asha, (AshaConfig{1, 6, 3}));
  EXPECT_EQ(spec->trials, 24);
  EXPECT_EQ(spec->time_limit, std::optional<double>(3600.0));
  EXPECT_EQ(spec->workers, 2);
  EXPECT_EQ(spec->origin, (dir_ / "p.yaml").string() + ":7:1");
}

TEST_F(SweepSpecTest, DefaultsAndNoSection) {
  EXPECT_FALSE(parse(kStages).has_value());
  const auto spec =
      parse(kStages + "sweep:\n  space:\n" + kLr + "\n" + kObjective + "\n" + kTrials + "\n");
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->sampler.kind, SamplerKind::Tpe);
  EXPECT_EQ(spec->sampler.seed, 0u);
  EXPECT_FALSE(spec->sampler.multivariate);
  EXPECT_EQ(spec->pruner.kind, PrunerKind::None);
  EXPECT_EQ(spec->workers, 1);
  EXPECT_FALSE(spec->time_limit.has_value());
  EXPECT_EQ(spec->trials, 4);
}

TEST_F(SweepSpecTest, GridTrialsDefaultToTheGridSize) {
  const auto spec = parse(kStages +
                          "sweep:\n  space:\n    train.with.a: {choice: [x, y, z]}\n"
                          "    train.with.b: {int: [1, 7], step: 3}\n" +
                          kObjective + "\n  sampler: {type: grid}\n");
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->trials, 9);  // 3 choices x {1, 4, 7}
}

// Each error is one line; `p` is the file as the test names it.
class SweepSpecErrorTest : public SweepSpecTest {
 protected:
  std::string at(int line, int column) const {
    return (dir_ / "p.yaml").string() + ":" + std::to_string(line) + ":" + std::to_string(column);
  }
};

TEST_F(SweepSpecErrorTest, UnknownDistributionKey) {
  EXPECT_EQ(error_of("    train.with.lr: {logunifrom: [1.0e-4, 3.0e-2]}"),
            at(9, 21) +
                ": sweep.space.train.with.lr: unknown distribution key 'logunifrom' (did "
                "you mean 'loguniform'?); expected one of: uniform, loguniform, int, "
                "choice, log, step");
}

TEST_F(SweepSpecErrorTest, EmptyChoice) {
  EXPECT_EQ(error_of("    train.with.lr: {choice: []}"),
            at(9, 29) + ": sweep.space.train.with.lr: choice is empty: give at least one value");
}

TEST_F(SweepSpecErrorTest, LowNotBelowHigh) {
  EXPECT_EQ(error_of("    train.with.lr: {uniform: [0.5, 0.1]}"),
            at(9, 30) + ": sweep.space.train.with.lr: low 0.5 must be below high 0.1");
  EXPECT_EQ(error_of("    train.with.n: {int: [3, 3]}"),
            at(9, 25) + ": sweep.space.train.with.n: low 3 must be below high 3");
}

TEST_F(SweepSpecErrorTest, LogRangeWithBoundNotPositive) {
  EXPECT_EQ(error_of("    train.with.lr: {loguniform: [0, 0.1]}"),
            at(9, 33) + ": sweep.space.train.with.lr: a log range needs low > 0, got 0");
  EXPECT_EQ(error_of("    train.with.n: {int: [-2, 8], log: true}"),
            at(9, 25) + ": sweep.space.train.with.n: a log range needs low > 0, got -2");
}

TEST_F(SweepSpecErrorTest, PathNotStageWithParam) {
  EXPECT_EQ(error_of("    train.lr: {uniform: [0, 1]}"),
            at(9, 5) +
                ": sweep.space: 'train.lr' is not a parameter path: expected "
                "<stage>.with.<param>");
}

TEST_F(SweepSpecErrorTest, UnknownStage) {
  EXPECT_EQ(error_of("    trian.with.lr: {uniform: [0, 1]}"),
            at(9, 5) +
                ": sweep.space: 'trian.with.lr' names stage 'trian', which is not a "
                "stage of this pipeline (did you mean 'train'?)");
}

TEST_F(SweepSpecErrorTest, DirectionTypo) {
  EXPECT_EQ(error_of(kLr, "  objective: {metric: m, direction: maximise}"),
            at(10, 37) +
                ": sweep.objective: direction 'maximise' is not one of maximize, "
                "minimize (did you mean 'maximize'?)");
}

TEST_F(SweepSpecErrorTest, UnknownSamplerAndPrunerTypes) {
  EXPECT_EQ(error_with("  sampler: {type: tpx}\n"),
            at(12, 19) +
                ": sweep.sampler: type 'tpx' is not one of grid, random, tpe (did you "
                "mean 'tpe'?)");
  EXPECT_EQ(error_with("  pruner: {type: ashb}\n"),
            at(12, 18) +
                ": sweep.pruner: type 'ashb' is not one of none, asha (did you mean "
                "'asha'?)");
}

TEST_F(SweepSpecErrorTest, GridWithAContinuousRange) {
  EXPECT_EQ(error_with("  sampler: {type: grid}\n"),
            at(9, 5) +
                ": sweep.space.train.with.lr: the grid sampler needs `choice` or `int` "
                "values, not loguniform");
}

TEST_F(SweepSpecErrorTest, AshaBounds) {
  EXPECT_EQ(error_with("  pruner: {type: asha, min_epochs: 0, max_epochs: 6}\n"),
            at(12, 36) + ": sweep.pruner: min_epochs must be >= 1, got 0");
  EXPECT_EQ(error_with("  pruner: {type: asha, min_epochs: 3, max_epochs: 2}\n"),
            at(12, 51) + ": sweep.pruner: max_epochs must be >= 3, got 2");
  EXPECT_EQ(error_with("  pruner: {type: asha, max_epochs: 6, reduction_factor: 1}\n"),
            at(12, 57) + ": sweep.pruner: reduction_factor must be >= 2, got 1");
}

TEST_F(SweepSpecErrorTest, TrialsAndWorkersAtLeastOne) {
  EXPECT_EQ(error_of(kLr, kObjective, "  trials: 0"),
            at(11, 11) + ": sweep: trials must be >= 1, got 0");
  EXPECT_EQ(error_with("  workers: 0\n"), at(12, 12) + ": sweep: workers must be >= 1, got 0");
}

TEST_F(SweepSpecErrorTest, UnknownKeys) {
  EXPECT_EQ(error_with("  trails: 5\n"),
            at(12, 3) +
                ": sweep: unknown key 'trails' (did you mean 'trials'?); expected one "
                "of: space, objective, sampler, pruner, trials, time_limit, workers");
  EXPECT_EQ(error_of(kLr, "  objective: {metric: m, direction: minimize, goal: 1}"),
            at(10, 47) +
                ": sweep.objective: unknown key 'goal'; expected one of: metric, "
                "direction");
  EXPECT_EQ(error_with("  sampler: {type: grid, seed: 1}\n"),
            at(12, 25) + ": sweep.sampler: unknown key 'seed'; expected one of: type");
}

TEST_F(SweepSpecErrorTest, TrialsMissingOrBeyondTheGrid) {
  EXPECT_EQ(error_of(kLr, kObjective, "  workers: 1"),
            at(7, 1) + ": sweep: no `trials:` (how many trials to run)");
  EXPECT_EQ(error_of("    train.with.n: {int: [1, 9]}", kObjective, "  trials: 10",
                     "  sampler: {type: grid}\n"),
            at(11, 11) + ": sweep: trials 10 is more than the grid's 9 combinations");
  EXPECT_EQ(error_with("  time_limit: 0\n"),
            at(12, 15) + ": sweep: time_limit must be a positive number of seconds, got 0");
}

TEST_F(SweepSpecErrorTest, StepMustDivideTheRange) {
  EXPECT_EQ(error_of("    train.with.n: {int: [1, 8], step: 2}"),
            at(9, 39) + ": sweep.space.train.with.n: step 2 must be >= 1 and divide high - low");
}

TEST_F(SweepSpecErrorTest, PipelineWithASweepStillParsesForRun) {
  const auto file = dir_ / "p.yaml";
  test::write_text(file, kStages + "sweep:\n  space:\n" + kLr + "\n" + kObjective + "\n");
  EXPECT_EQ(parse_pipeline(file).stages.size(), 2u);  // `kiln run` ignores the section
}

}  // namespace
}  // namespace kiln::sweep
