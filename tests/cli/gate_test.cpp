// The evaluation gate through the real kiln executable (issue 5, acceptance 4): a
// deliberately worse model does not take `champion` from a better one, it is
// registered all the same without moving the alias, kiln exits with the gate code,
// and `kiln registry rollback` restores the previous champion after a promotion.
#include <gmock/gmock.h>

#include "registry_cli_support.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace fs = std::filesystem;

class GateTest : public CliTest {
 protected:
  CommandResult run_gated(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"run", "p.yaml"};
    for (const auto& gate : champion_gate()) args.push_back(gate);
    args.insert(args.end(), extra.begin(), extra.end());
    return kiln(args);
  }
  double accuracy_of(std::int64_t version) {
    return std::stod(model_version(registry(), version).tags.at("kiln.eval.accuracy"));
  }
};

// One epoch at a tenth of the learning rate: clearly worse on the synthetic task.
const std::vector<std::string> kWorse = {"train.with.epochs=1", "train.with.lr=0.0003"};

TEST_F(GateTest, AWorseModelDoesNotTakeChampionAndRollbackRestoresIt) {
  const CommandResult first = run_gated({});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.err, HasSubstr("synthetic-mlp has no 'champion' yet"));
  ASSERT_EQ(champion(registry()), 1);

  const CommandResult worse = run_gated(kWorse);
  EXPECT_EQ(worse.exit_code, 4) << worse.err;
  EXPECT_THAT(lines_of(worse.err).back(),
              StartsWith("kiln: gate failed: stage 'register' (register): gate refused the "
                         "model: accuracy "));
  EXPECT_THAT(lines_of(worse.err).back(),
              HasSubstr("does not beat synthetic-mlp version 1 ('champion', "));
  EXPECT_THAT(lines_of(worse.err).back(),
              HasSubstr("registered as synthetic-mlp version 2, alias 'champion' stays on version "
                        "1"));
  EXPECT_EQ(champion(registry()), 1);
  const auto refused = model_version(registry(), 2);
  EXPECT_EQ(refused.tags.at("kiln.gate"), "refused");
  EXPECT_THAT(refused.tags.at("kiln.gate.reasons"), HasSubstr("does not beat"));
  EXPECT_EQ(model_version(registry(), 1).tags.at("kiln.gate"), "passed");
  EXPECT_LT(accuracy_of(2), accuracy_of(1));
  const auto runs = pipeline_runs(registry());
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].status, registry::RunStatus::Failed);
  EXPECT_EQ(refused.run_id, runs[1].run_id);

  // The same refused model again: evaluate is cached, register runs again but adds
  // no duplicate version.
  const CommandResult again = run_gated(kWorse);
  EXPECT_EQ(again.exit_code, 4) << again.err;
  EXPECT_THAT(lines_of(again.err).back(),
              HasSubstr("registered before as synthetic-mlp version 2"));
  EXPECT_FALSE(fs::exists(registry() / "mlruns" / "models" / kModel / "version-3"));

  // A person overrides the gate, then changes their mind.
  const CommandResult promote = kiln({"registry", "promote", kModel, "2", "--alias", "champion"});
  ASSERT_EQ(promote.exit_code, 0) << promote.err;
  EXPECT_EQ(promote.out, "synthetic-mlp: alias 'champion' -> version 2 (was version 1)\n");
  EXPECT_EQ(champion(registry()), 2);
  const CommandResult rollback = kiln({"registry", "rollback", kModel, "--alias", "champion"});
  ASSERT_EQ(rollback.exit_code, 0) << rollback.err;
  EXPECT_EQ(rollback.out,
            "synthetic-mlp: alias 'champion' rolled back to version 1 (was version 2)\n");
  EXPECT_EQ(champion(registry()), 1);
  // Nothing earlier to go back to: a clear error, nothing changed.
  const auto before = snapshot(registry());
  const CommandResult nothing = kiln({"registry", "rollback", kModel});
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_EQ(nothing.err,
            "kiln: config error: registry: model 'synthetic-mlp' alias 'champion': no earlier "
            "version to roll back to (it points at version 1, the first it held)\n");
  EXPECT_EQ(snapshot(registry()), before);
}

TEST_F(GateTest, AnEqualOrBetterModelTakesChampion) {
  ASSERT_EQ(run_gated(kWorse).exit_code, 0);  // the first version takes the alias
  const CommandResult better = run_gated({});
  ASSERT_EQ(better.exit_code, 0) << better.err;
  EXPECT_THAT(better.out, HasSubstr("synthetic-mlp version 2 (champion)"));
  EXPECT_EQ(champion(registry()), 2);
  EXPECT_GE(accuracy_of(2), accuracy_of(1));
}

// Numbers on different test sets say nothing about each other: the champion check
// is skipped, with a log line, and the absolute thresholds decide.
TEST_F(GateTest, ChampionTestedOnAnotherDatasetVersionIsNotCompared) {
  ASSERT_EQ(run_gated({}).exit_code, 0);
  write_synthetic_idx(dir_.path(), "other", 200, 3);
  const CommandResult other = run_gated({"train.with.epochs=1", "train.with.lr=0.0003",
                                         "test_data.with.images=other-images.idx",
                                         "test_data.with.labels=other-labels.idx"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_THAT(other.err, HasSubstr("beat_champion not applied: synthetic-mlp version 1 "
                                   "('champion') was evaluated on test dataset '"));
  EXPECT_THAT(other.err, HasSubstr("the absolute thresholds decide"));
  EXPECT_EQ(champion(registry()), 2);
}

// on_fail: stop (the default) keeps the pipeline's old behaviour: the gate fails in
// evaluate and nothing is registered.
TEST_F(GateTest, OnFailStopRefusesBeforeRegister) {
  ASSERT_EQ(run_gated({}).exit_code, 0);
  const CommandResult worse =
      kiln({"run", "p.yaml", "evaluate.with.beat_champion={model: synthetic-mlp}",
            "train.with.epochs=1", "train.with.lr=0.0003"});
  EXPECT_EQ(worse.exit_code, 4) << worse.err;
  EXPECT_THAT(lines_of(worse.err).back(),
              StartsWith("kiln: gate failed: stage 'evaluate' (evaluate): gate refused the model: "
                         "accuracy "));
  EXPECT_FALSE(fs::exists(registry() / "mlruns" / "models" / kModel / "version-2"));
  EXPECT_EQ(champion(registry()), 1);
}

TEST_F(GateTest, BadBeatChampionParametersAreConfigErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{metric: accuracy}", "needs 'model'"},
      {"{model: a/b}", "model name 'a/b'"},
      {"{model: m, metric: f1}", "unknown metric 'f1'"},
      {"{model: m, delta: -1}", "'delta' must be a number >= 0"},
      {"{model: m, alias: ../x}", "alias '../x'"},
      {"{model: m, margin: 1}", "unknown key 'margin'"}};
  for (const auto& [value, message] : cases) {
    const CommandResult result = kiln({"run", "p.yaml", "evaluate.with.beat_champion=" + value});
    EXPECT_EQ(result.exit_code, 2) << value << ": " << result.err;
    EXPECT_THAT(result.err, HasSubstr(message)) << value;
    EXPECT_EQ(lines_of(result.err).size(), 1u) << result.err;
  }
  const CommandResult on_fail = kiln({"run", "p.yaml", "evaluate.with.on_fail=ignore"});
  EXPECT_EQ(on_fail.exit_code, 2) << on_fail.err;
  EXPECT_FALSE(fs::exists(registry()));
}

}  // namespace
}  // namespace kiln::test
