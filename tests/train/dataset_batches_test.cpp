// The training batch source: u8 images are preprocessed split over the CPU
// threads, and the batches are the same bits on one thread and on three, with
// augmentation drawn per sample.
#include <kiln/cpu_threads.h>
#include <kiln/data/dataset.h>
#include <kiln/train/batches.h>

#include <gtest/gtest.h>

#include "support/support.h"

namespace kiln::train {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// 300 u8 images of 28 x 28 with a pattern that no flip or crop leaves unchanged.
fs::path write_images(const fs::path& registry) {
  const std::int64_t rows = 300;
  data::Array x{"x", DType::U8, {rows, 28, 28}, {}};
  data::Array y{"y", DType::U8, {rows}, {}};
  for (std::int64_t i = 0; i < rows; ++i) {
    y.bytes.push_back(static_cast<std::uint8_t>(i % 10));
    for (std::int64_t p = 0; p < 28 * 28; ++p)
      x.bytes.push_back(static_cast<std::uint8_t>((i * 7 + p * 13 + p / 28 * 5) % 256));
  }
  return data::DatasetStore(registry).put("images", {x, y}, Json::object()).file;
}

// Every batch of two epochs, x and y, on `threads` CPU threads.
std::vector<std::vector<float>> batches_on(const fs::path& file, int threads) {
  set_cpu_threads(threads);
  BatchOptions options;
  options.batch_size = 128;  // above the rows from which preprocessing splits
  options.seed = 3;
  options.preprocess =
      Json::parse(R"({"mean": [0.3], "std": [0.4], "crop_padding": 2, "flip": 0.5})");
  auto source = dataset_batches(file, options);
  std::vector<std::vector<float>> out;
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    source->start_epoch(epoch, 0);
    for (Batch batch; source->next(batch);) {
      out.push_back(batch.x.to_vector());
      const std::int32_t* labels = batch.y.data<std::int32_t>();
      out.emplace_back(labels, labels + batch.y.numel());
    }
  }
  return out;
}

TEST(DatasetBatches, PreprocessedImagesAreTheSameBitsOnOneAndThreeThreads) {
  test::TempDir dir;
  const fs::path file = write_images(dir / "registry");
  const auto one = batches_on(file, 1);
  const auto three = batches_on(file, 3);
  set_cpu_threads(0);
  ASSERT_EQ(one.size(), 12u);  // 3 batches (128, 128, 44) x 2 epochs, x and y
  EXPECT_EQ(one, three);
  EXPECT_NE(one[0], one[6]) << "epoch 2 drew the same augmentation as epoch 1";
}

}  // namespace
}  // namespace kiln::train
