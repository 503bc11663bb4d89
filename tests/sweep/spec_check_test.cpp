// check_sweep: the swept parameters against the stage type's schema.
#include <kiln/error.h>
#include <kiln/stage.h>
#include <kiln/sweep/spec.h>

#include <gtest/gtest.h>

#include "support/support.h"

namespace kiln::sweep {
namespace {
using nlohmann::json;

class SweepCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    type_.name = "toy_train";
    type_.params.required("lr", ParamType::Float, "learning rate")
        .optional("epochs", ParamType::Int, 3, "epochs")
        .optional("model", ParamType::Object, json::object(), "layers")
        .choice("optimizer", {"adam", "sgd"}, "optimizer");
    PipelineStage stage;
    stage.name = "train";
    stage.type = &type_;
    pipeline_.stages.push_back(stage);
  }
  // The error check_sweep gives for one swept parameter (line 6 of the file).
  std::string error_of(const std::string& param_line) {
    const auto file = dir_ / "p.yaml";
    test::write_text(file, "stages:\n  train:\n    uses: toy_train\nsweep:\n  space:\n" +
                               param_line +
                               "\n  objective: {metric: loss, direction: minimize}\n"
                               "  trials: 3\n");
    const auto spec = parse_sweep(parse_pipeline(file));
    try {
      check_sweep(*spec, pipeline_);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  }
  std::string at(int line, int column) const {
    return (dir_ / "p.yaml").string() + ":" + std::to_string(line) + ":" + std::to_string(column);
  }
  StageType type_;
  Pipeline pipeline_;
  test::TempDir dir_;
};

TEST_F(SweepCheckTest, AcceptsParametersOfTheRightTypes) {
  EXPECT_EQ(error_of("    train.with.lr: {loguniform: [1.0e-4, 1.0e-2]}"), "no error");
  EXPECT_EQ(error_of("    train.with.lr: {int: [1, 3]}"), "no error");  // ints are floats too
  EXPECT_EQ(error_of("    train.with.epochs: {int: [1, 3]}"), "no error");
  EXPECT_EQ(error_of("    train.with.optimizer: {choice: [sgd, adam]}"), "no error");
  EXPECT_EQ(error_of("    train.with.model: {choice: [{layers: [relu]}, [1]]}"), "no error");
}

TEST_F(SweepCheckTest, UnknownParameterSuggestsTheNearest) {
  EXPECT_EQ(error_of("    train.with.lrr: {uniform: [0, 1]}"),
            at(6, 5) +
                ": sweep.space: stage 'train' (toy_train): unknown parameter 'lrr' (did "
                "you mean 'lr'?); parameters of toy_train: lr, epochs, model, optimizer");
}

TEST_F(SweepCheckTest, DistributionMustSuitTheParameterType) {
  EXPECT_EQ(error_of("    train.with.epochs: {uniform: [1, 4]}"),
            at(6, 5) +
                ": sweep.space.train.with.epochs: uniform draws floats, but the parameter "
                "is int");
  EXPECT_EQ(error_of("    train.with.optimizer: {int: [1, 4]}"),
            at(6, 5) +
                ": sweep.space.train.with.optimizer: int draws integers, but the "
                "parameter is string");
  EXPECT_EQ(error_of("    train.with.optimizer: {choice: [adam, sgdd]}"),
            at(6, 5) +
                ": sweep.space.train.with.optimizer: choice \"sgdd\" is not a valid value "
                "of the parameter (string: one of adam, sgd)");
  EXPECT_EQ(error_of("    train.with.epochs: {choice: [1, 2.5]}"),
            at(6, 5) +
                ": sweep.space.train.with.epochs: choice 2.5 is not a valid value of the "
                "parameter (int)");
}

}  // namespace
}  // namespace kiln::sweep
