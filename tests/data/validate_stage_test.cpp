// The validate plugin's stages `validate` and `drift`, run in-process: outputs,
// metrics, the report artifact, and failures.
#include <kiln/data/dataset.h>
#include <kiln/error.h>

#include "data/data_test_support.h"
#include "data/fake_context.h"
#include "data/npy_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::FakeContext;
using ::testing::HasSubstr;

const fs::path kPluginFile = fs::path(KILN_BINARY_DIR) / "lib/kiln/plugins/kiln-validate.so";

class ValidatePlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    // CMake builds it before this suite (DEPENDS): missing is a build bug.
    ASSERT_TRUE(fs::exists(kPluginFile))
        << kPluginFile << " is not built (target kiln_plugin_validate)";
    types_ = testing::load_plugin_types(kPluginFile);
    ASSERT_EQ(types_.size(), 2u);
  }

  Artifact dataset(const std::string& producer, std::vector<float> x) {
    const auto rows = static_cast<std::int64_t>(x.size());
    testing::Bytes y(x.size());
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::uint8_t>(i % 2);
    const DatasetVersion version =
        DatasetStore(dir_ / "registry")
            .put(producer,
                 {testing::make_array("x", DType::F32, {rows, 1}, testing::little_endian(x)),
                  testing::make_array("y", DType::U8, {rows}, y)},
                 {});
    return {.name = "dataset",
            .kind = "dataset",
            .path = version.file,
            .content_id = version.id,
            .producer = producer};
  }

  FakeContext context(const std::string& type, nlohmann::json values,
                      std::vector<Artifact> inputs) {
    return FakeContext(dir_.path(), type,
                       testing::with_defaults(testing::find_type(types_, type), std::move(values)),
                       std::move(inputs));
  }
  void run(FakeContext& context) { testing::find_type(types_, context.type()).run(context); }

  testing::ScratchDir dir_;
  std::vector<StageType> types_;
};

TEST_F(ValidatePlugin, PassingDataIsPassedOnWithItsReport) {
  const Artifact train = dataset("train_data", {0, 1, 2, 3});
  FakeContext ctx = context("validate", {{"classes", {0, 1}}}, {train});
  run(ctx);
  ASSERT_EQ(ctx.emitted.size(), 2u);
  EXPECT_EQ(ctx.emitted[0].kind, "dataset");
  EXPECT_EQ(ctx.emitted[0].content_id, train.content_id);
  EXPECT_EQ(ctx.emitted[1].kind, "validation");
  EXPECT_EQ(ctx.emitted[1].path, "validation.json");
  EXPECT_TRUE(fs::exists(ctx.work_dir() / "validation.json"));
  EXPECT_EQ(ctx.run_log_.metrics.at("check/failed_checks"), 0);
  EXPECT_EQ(ctx.run_log_.metrics.at("check/classes"), 2);
  EXPECT_EQ(ctx.run_log_.metrics.at("check/x/max"), 3);
}

TEST_F(ValidatePlugin, NanFailsTheStageAndTheReportStaysInTheRun) {
  const Artifact train = dataset("train_data", {0, std::numeric_limits<float>::quiet_NaN(), 2});
  FakeContext ctx = context("validate", {}, {train});
  EXPECT_THAT(
      [&] { run(ctx); },
      ::testing::ThrowsMessage<DataError>(HasSubstr(
          "failed validation: nan: array 'x' holds 1 NaN and 0 Inf values (first in row 1)")));
  EXPECT_TRUE(ctx.emitted.empty());
  EXPECT_EQ(ctx.run_log_.metrics.at("check/x/nan"), 1);
  const auto report =
      nlohmann::json::parse(kiln::test::read_text(dir_ / "artifacts" / "check-validation.json"));
  EXPECT_EQ(report["passed"], false);
}

TEST_F(ValidatePlugin, OverlapWithNamesTheOtherInput) {
  const Artifact train = dataset("train_data", {0, 1, 2, 3});
  const Artifact test = dataset("test_data", {3, 4});
  FakeContext ctx = context("validate", {{"overlap_with", "test_data"}}, {train, test});
  EXPECT_THAT([&] { run(ctx); },
              ::testing::ThrowsMessage<DataError>(HasSubstr("overlap: 1 rows of 'x' also appear")));
  FakeContext wrong = context("validate", {{"overlap_with", "nope"}}, {train, test});
  EXPECT_THAT([&] { run(wrong); },
              ::testing::ThrowsMessage<ConfigError>(HasSubstr(
                  "'nope' is not a stage in `needs` that produces a dataset (datasets come from: "
                  "train_data, test_data)")));
}

TEST_F(ValidatePlugin, SchemaParametersAreCheckedBeforeRunning) {
  const StageType& type = testing::find_type(types_, "validate");
  const Params bad("check", testing::with_defaults(type, {{"schema", {{"x", {{"dtype", "u7"}}}}}}),
                   {});
  EXPECT_THROW(type.check(bad), ConfigError);
  const Params ranges("check", testing::with_defaults(type, {{"ranges", {{"x", {5, 1}}}}}), {});
  EXPECT_THROW(type.check(ranges), ConfigError);
}

TEST_F(ValidatePlugin, DriftFailsOnAShiftAndPassesWithout) {
  std::vector<float> reference, same, shifted;
  for (int i = 0; i < 400; ++i) {
    reference.push_back(static_cast<float>(i % 40));
    same.push_back(static_cast<float>((i * 7) % 40));
    shifted.push_back(static_cast<float>(i % 40) + 20);
  }
  const Artifact train = dataset("train_data", reference);
  FakeContext ok = context("drift", {{"reference", "train_data"}}, {train, dataset("a", same)});
  run(ok);
  EXPECT_EQ(ok.run_log_.metrics.at("check/drifting_features"), 0);
  EXPECT_EQ(ok.emitted[1].kind, "drift");
  FakeContext bad = context("drift", {{"reference", "train_data"}}, {dataset("b", shifted), train});
  EXPECT_THAT([&] { run(bad); },
              ::testing::ThrowsMessage<DataError>(HasSubstr("drifted from reference")));
  EXPECT_GT(bad.run_log_.metrics.at("check/max_psi"), 1.0);
}

}  // namespace
}  // namespace kiln::data
