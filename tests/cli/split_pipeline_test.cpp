// `split` in a pipeline run by the kiln executable: the last 100 of 1000 imported
// rows become the validation part, and a `train` stage with `needs: [split]` finds
// its single dataset input (the train part) and trains on it.
#include <kiln/data/dataset.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/cli_fixture.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

class SplitPipeline : public CliTest {};

TEST_F(SplitPipeline, TrainNeedsSplitAndGetsTheTrainPart) {
  write_text(dir_ / "split.yaml", R"(name: split
stages:
  train_data:
    uses: idx_import
    with: {images: train-images.idx, labels: train-labels.idx, name: synthetic}
  split:
    uses: split
    needs: [train_data]
    with: {validation: 100, order: last}
  train:
    uses: train
    needs: [split]
    with:
      model: {layers: [flatten, {linear: {out: classes}}]}
      epochs: 1
      batch_size: 100
      threads: 1
)");
  const CommandResult run = kiln({"run", "split.yaml"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;

  std::map<std::string, nlohmann::json> manifests;  // by stage type
  for (const auto& entry : fs::directory_iterator(registry() / "stages")) {
    if (!fs::exists(entry.path() / "manifest.json")) continue;
    const auto manifest = nlohmann::json::parse(read_text(entry.path() / "manifest.json"));
    manifests[manifest["type"]] = manifest;
  }
  ASSERT_TRUE(manifests.contains("split")) << run.err;
  ASSERT_TRUE(manifests.contains("train")) << run.err;
  const nlohmann::json& outputs = manifests["split"]["outputs"];
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs[0]["kind"], "dataset");
  EXPECT_EQ(outputs[1]["kind"], "validation_data");
  const auto train_part =
      data::read_dataset_info(registry() / outputs[0]["path"].get<std::string>());
  const auto validation_part =
      data::read_dataset_info(registry() / outputs[1]["path"].get<std::string>());
  EXPECT_EQ(train_part.rows(), 900);
  EXPECT_EQ(validation_part.rows(), 100);
  EXPECT_EQ(train_part.name, "synthetic-train");
  EXPECT_EQ(validation_part.name, "synthetic-validation");
  // The validation part is rows 900..999 of the import, byte for byte.
  const auto imported = data::read_array(
      registry() / manifests["idx_import"]["outputs"][0]["path"].get<std::string>(), "x");
  const auto validation_x = data::read_array(validation_part.file, "x");
  ASSERT_EQ(validation_x.bytes.size(), 100u * 784u);
  EXPECT_TRUE(std::equal(validation_x.bytes.begin(), validation_x.bytes.end(),
                         imported.bytes.begin() + 900 * 784));
  // train consumed both of split's outputs and read the dataset one.
  const nlohmann::json& inputs = manifests["train"]["inputs"];
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0]["kind"], "dataset");
  EXPECT_EQ(inputs[0]["content_id"], train_part.id);
  EXPECT_EQ(inputs[1]["kind"], "validation_data");
}

}  // namespace
}  // namespace kiln::test
