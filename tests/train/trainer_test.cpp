// The Trainer: resume after an interruption is bit-identical to an uninterrupted
// run, the NaN guard stops and keeps the last good checkpoint, gradient
// accumulation equals the larger batch, and metrics come every log_every steps.
#include <kiln/data/dataset.h>
#include <kiln/error.h>
#include <kiln/run_log.h>
#include <kiln/train/predict.h>
#include <kiln/train/trainer.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "ops/precision.h"
#include "support/memory_run_log.h"
#include "support/support.h"

namespace kiln::train {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

using test::MemoryRunLog;

// 4x4 single-channel images, class = the brightest quadrant, plus noise.
fs::path write_dataset(const fs::path& registry, std::int64_t rows, bool poison_row_50 = false) {
  data::Array x{"x", DType::F32, {rows, 4, 4}, {}};
  data::Array y{"y", DType::U8, {rows}, {}};
  std::vector<float> pixels(static_cast<std::size_t>(rows * 16));
  for (std::int64_t i = 0; i < rows; ++i) {
    const int label = static_cast<int>(i % 4);
    y.bytes.push_back(static_cast<std::uint8_t>(label));
    for (int p = 0; p < 16; ++p) {
      const int quadrant = (p / 8) * 2 + (p % 4) / 2;
      pixels[static_cast<std::size_t>(i * 16 + p)] =
          (quadrant == label ? 1.0f : 0.0f) + 0.1f * std::sin(static_cast<float>(i * 16 + p));
    }
  }
  if (poison_row_50) pixels[50 * 16 + 3] = std::nanf("");
  x.bytes.resize(pixels.size() * 4);
  std::memcpy(x.bytes.data(), pixels.data(), x.bytes.size());
  return data::DatasetStore(registry).put("quadrants", {x, y}, Json::object()).file;
}

TrainerConfig config(const std::string& optimizer = "adamw") {
  TrainerConfig c;
  c.model = Json::parse(R"({"input": [1, 4, 4], "layers": [
      {"conv2d": {"out": 4, "kernel": 3, "padding": 1}}, {"batchnorm2d": {}}, "relu",
      "flatten", {"dropout": {"p": 0.2}}, {"linear": {"out": 4}}]})");
  c.epochs = 3;
  c.optimizer.kind = optimizer;
  c.schedule.kind = "cosine";
  c.schedule.lr = 0.01;
  c.schedule.warmup_steps = 2;
  c.seed = 7;
  c.log_every = 4;
  c.checkpoint_every = 5;
  return c;
}

std::vector<std::vector<float>> weights(Trainer& trainer) {
  std::vector<std::vector<float>> out;
  for (const nn::Parameter* p : trainer.model().parameters()) out.push_back(p->value.to_vector());
  for (const auto& [name, tensor] : trainer.model().buffers()) out.push_back(tensor->to_vector());
  return out;
}

class TrainerTest : public ::testing::Test {
 protected:
  std::unique_ptr<BatchSource> batches(const fs::path& file, std::int64_t batch_size = 16,
                                       bool shuffle = true) {
    BatchOptions options;
    options.batch_size = batch_size;
    options.seed = 7;
    options.shuffle = shuffle;
    options.sample_shape = {1, 4, 4};
    return dataset_batches(file, options);
  }
  test::TempDir dir_;
};

TEST_F(TrainerTest, ResumeAfterAnInterruptionIsBitIdentical) {
  const fs::path data = write_dataset(dir_ / "registry", 200);
  auto source = batches(data);
  Trainer straight(config(), *source, {nullptr, nullptr, [] { return false; }, dir_ / "straight"});
  const TrainResult full = straight.run();
  EXPECT_EQ(full.steps, 39);  // 13 batches of 16 (the last of 8) x 3 epochs

  // Stop at the 17th step boundary (mid epoch 2), then resume in a fresh trainer.
  int boundaries = 0;
  auto first_source = batches(data);
  Trainer first(config(), *first_source,
                {nullptr, nullptr, [&] { return ++boundaries > 17; }, dir_ / "resumed"});
  EXPECT_THROW(first.run(), InterruptedError);
  auto second_source = batches(data);
  Trainer second(config(), *second_source,
                 {nullptr, nullptr, [] { return false; }, dir_ / "resumed"});
  const TrainResult resumed = second.run();
  EXPECT_EQ(resumed.resumed_at, 17);
  EXPECT_EQ(resumed.steps, 39);
  EXPECT_EQ(weights(second), weights(straight))
      << "resumed weights differ from an uninterrupted run";
}

TEST_F(TrainerTest, ResumeWithSgdMomentumAndAccumulationIsBitIdentical) {
  const fs::path data = write_dataset(dir_ / "registry", 120);
  TrainerConfig c = config("sgd");
  c.accumulate = 2;
  c.clip_norm = 1.0;
  auto a = batches(data, 8);
  Trainer straight(c, *a, {nullptr, nullptr, [] { return false; }, dir_ / "a"});
  straight.run();
  int boundaries = 0;
  auto b = batches(data, 8);
  Trainer first(c, *b, {nullptr, nullptr, [&] { return ++boundaries > 11; }, dir_ / "b"});
  EXPECT_THROW(first.run(), InterruptedError);
  auto b2 = batches(data, 8);
  Trainer second(c, *b2, {nullptr, nullptr, [] { return false; }, dir_ / "b"});
  second.run();
  EXPECT_EQ(weights(second), weights(straight));
}

TEST_F(TrainerTest, NanGuardStopsAndKeepsTheLastGoodCheckpoint) {
  const fs::path data = write_dataset(dir_ / "registry", 200, /*poison_row_50=*/true);
  auto source = batches(data, 10, /*shuffle=*/false);
  TrainerConfig c = config();
  c.checkpoint_every = 1;
  Trainer trainer(c, *source, {nullptr, nullptr, [] { return false; }, dir_ / "nan"});
  try {
    trainer.run();
    FAIL() << "expected the NaN guard to stop training";
  } catch (const StageError& e) {
    // Row 50 is in batch 5 (rows 50..59) of the unshuffled first epoch: step 6.
    EXPECT_THAT(e.what(),
                ::testing::StartsWith("loss is nan at step 6 (epoch 1): training diverged"));
  }
  // The checkpoint is the one written after step 5, the last finite one.
  const std::string text = test::read_text(dir_ / "nan" / "checkpoint.safetensors");
  EXPECT_NE(text.find("\\\"step\\\":5"), std::string::npos);
}

// The loss stays on the device between metric lines: a NaN is found when the
// window is read, and the error names the steps the window covered.
TEST_F(TrainerTest, NanGuardNamesTheStepsOfTheWindowItRead) {
  const fs::path data = write_dataset(dir_ / "registry", 200, /*poison_row_50=*/true);
  auto source = batches(data, 10, /*shuffle=*/false);
  TrainerConfig c = config();
  c.log_every = 8;
  c.checkpoint_every = 0;
  MemoryRunLog run;
  Trainer trainer(c, *source, {&run, nullptr, [] { return false; }, dir_ / "nan-window"});
  try {
    trainer.run();
    FAIL() << "expected the NaN guard to stop training";
  } catch (const StageError& e) {
    // Row 50 poisons step 6; the first read is after step 8.
    EXPECT_THAT(e.what(),
                ::testing::StartsWith("loss is nan in steps 1-8 (epoch 1): training diverged"));
  }
  EXPECT_EQ(run.metrics.count("train/loss"), 0u) << "no metric line for the diverged window";
  EXPECT_FALSE(fs::exists(dir_ / "nan-window" / "checkpoint.safetensors"));
}

TEST_F(TrainerTest, AccumulatingTwoHalfBatchesEqualsOneFullBatch) {
  const fs::path data = write_dataset(dir_ / "registry", 96);
  TrainerConfig c = config("sgd");
  c.model = Json::parse(
      R"({"input": [1, 4, 4], "layers": ["flatten", {"linear": {"out": 8}}, "relu", {"linear": {"out": 4}}]})");
  c.optimizer.momentum = 0.0;
  c.checkpoint_every = 0;
  auto full_source = batches(data, 16);
  Trainer full(c, *full_source, {});
  full.run();
  c.accumulate = 2;
  auto half_source = batches(data, 8);
  Trainer halves(c, *half_source, {});
  halves.run();
  const auto a = weights(full), b = weights(halves);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t t = 0; t < a.size(); ++t)
    for (std::size_t i = 0; i < a[t].size(); ++i)
      EXPECT_NEAR(a[t][i], b[t][i], 1e-5) << t << "[" << i << "]";
}

TEST_F(TrainerTest, LearnsAndLogsEveryLogStep) {
  const fs::path data = write_dataset(dir_ / "registry", 200);
  auto source = batches(data);
  MemoryRunLog run;
  Trainer trainer(config(), *source, {&run, nullptr, [] { return false; }, {}});
  const TrainResult result = trainer.run();
  // Steps 4, 8, 12 and the epoch end 13 in each of the 3 epochs.
  ASSERT_EQ(run.metrics["train/loss"].size(), 12u);
  EXPECT_EQ(run.metrics["train/loss"].back().first, 39);
  EXPECT_LT(result.last_loss, run.metrics["train/loss"].front().second);
  EXPECT_GT(run.metrics["train/accuracy"].back().second, 0.9);
  // Warmup: lr at step s (1-based after the step) is 0.01 * cos-schedule * s/2 for s <= 2.
  EXPECT_GT(run.metrics["train/lr"].front().second, run.metrics["train/lr"].back().second);
  for (const auto& [step, value] : run.metrics["train/samples_per_s"]) EXPECT_GT(value, 0) << step;
}

// The epoch hook sees each epoch once, after its last step, with the model as trained
// so far; scoring the model there agrees with predicting it row by row.
TEST_F(TrainerTest, EpochHookScoresTheModelAfterEveryEpoch) {
  const fs::path data = write_dataset(dir_ / "registry", 200);
  const fs::path validation = write_dataset(dir_ / "registry", 60);
  auto source = batches(data);
  std::vector<std::int64_t> epochs;
  std::vector<double> accuracies;
  TrainerIO io{.run = nullptr, .progress = nullptr, .stop_requested = [] { return false; }};
  // One source for every epoch, as the train stage keeps it.
  std::unique_ptr<BatchSource> scored;
  io.on_epoch_end = [&](std::int64_t epoch, nn::Model& model) {
    epochs.push_back(epoch);
    if (scored == nullptr) scored = evaluation_batches(model, Json::object(), validation, 25);
    const Scores scores = score_classifier(model, *scored);
    const Predictions rows = predict_classes(model, Json::object(), validation, 7);
    ASSERT_EQ(scores.rows, 60);
    ASSERT_EQ(rows.labels.size(), 60u);
    std::size_t right = 0;
    double loss = 0;
    for (std::size_t i = 0; i < rows.labels.size(); ++i) {
      right += rows.labels[i] == rows.predicted[i];
      loss += rows.losses[i];
    }
    EXPECT_DOUBLE_EQ(scores.accuracy, static_cast<double>(right) / 60.0) << epoch;
    EXPECT_NEAR(scores.loss, loss / 60.0, 1e-5) << epoch;
    accuracies.push_back(scores.accuracy);
  };
  Trainer trainer(config(), *source, io);
  trainer.run();
  EXPECT_EQ(epochs, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_GT(accuracies.back(), 0.9);  // the quadrant task is learnt in 3 epochs
}

// Trains the quadrant task in `precision`: the last window's loss and accuracy, and
// the weights.
struct Trained {
  double loss, accuracy;
  std::vector<std::vector<float>> weights;
};

// bf16 on the CPU (oneDNN with AVX512-BF16 or AMX-BF16): the convolution's and the
// linear layer's factors are rounded, so the weights move off float32's, and the
// task is learnt as well. Stated tolerance: the last window's loss within 0.01 of
// float32's (both end near 0.03 here; they differed by 3e-5 when written) and the
// same accuracy within 0.05.
TEST_F(TrainerTest, Bf16OnTheCpuLearnsWhatFloat32Learns) {
  if (!ops::cpu_has_bf16())
    GTEST_SKIP() << "this CPU lacks CPU bf16 instructions (oneDNN runs " << ops::cpu_isa_name()
                 << ")";
  const fs::path data = write_dataset(dir_ / "registry", 200);
  auto train = [&](nn::Precision precision) {
    auto source = batches(data);
    MemoryRunLog run;
    TrainerConfig c = config();
    c.precision = precision;
    Trainer trainer(c, *source, {&run, nullptr, [] { return false; }, {}});
    const TrainResult result = trainer.run();
    return Trained{result.last_loss, run.metrics["train/accuracy"].back().second, weights(trainer)};
  };
  const Trained f32 = train(nn::Precision::F32);
  const Trained bf16 = train(nn::Precision::BF16);
  EXPECT_NE(bf16.weights, f32.weights) << "bf16 trained exactly as float32: nothing was rounded";
  EXPECT_NEAR(bf16.loss, f32.loss, 0.01);
  EXPECT_NEAR(bf16.accuracy, f32.accuracy, 0.05);
  EXPECT_GT(bf16.accuracy, 0.9);
}

// Where the CPU lacks bf16 instructions, bf16 training is float32 training, bit for
// bit, after one warning. The CPU is made to lack them by limiting oneDNN to
// AVX-512 without BF16 (ONEDNN_MAX_CPU_ISA), which oneDNN reads once per process:
// so the training runs in a fresh process, gtest's "threadsafe" death test.
TEST_F(TrainerTest, Bf16WithoutTheInstructionsTrainsInFloat32AndSaysSo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ::setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE", 1);
  EXPECT_EXIT(
      {
        if (ops::cpu_has_bf16()) std::exit(2);  // the limit came too late
        const fs::path data = write_dataset(dir_ / "registry", 100);
        auto train = [&](nn::Precision precision) {
          auto source = batches(data);
          TrainerConfig c = config();
          c.epochs = 1;
          c.precision = precision;
          Trainer trainer(c, *source, {});
          trainer.run();
          return weights(trainer);
        };
        std::exit(train(nn::Precision::F32) == train(nn::Precision::BF16) ? 0 : 1);
      },
      ::testing::ExitedWithCode(0),
      "precision bf16 needs AVX512-BF16 or AMX-BF16 instructions, which this CPU lacks "
      "\\(oneDNN runs [a-z0-9_]+ here\\); training in float32");
}

// With AVX512-BF16 but no AMX (oneDNN limited to AVX512_CORE_BF16, in a fresh
// process as above), bf16 trains in bf16 and one warning says what it measured.
TEST_F(TrainerTest, Bf16WithoutAmxSaysItMeasuredSlower) {
  if (!ops::cpu_has_bf16())
    GTEST_SKIP() << "this CPU lacks CPU bf16 instructions (oneDNN runs " << ops::cpu_isa_name()
                 << ")";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ::setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16", 1);
  EXPECT_EXIT(
      {
        if (std::string_view(ops::cpu_isa_name()) != "avx512_core_bf16") std::exit(2);
        const fs::path data = write_dataset(dir_ / "registry", 100);
        auto source = batches(data);
        TrainerConfig c = config();
        c.epochs = 1;
        c.precision = nn::Precision::BF16;
        Trainer trainer(c, *source, {});
        trainer.run();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "precision bf16 runs on avx512_core_bf16 here, without AMX-BF16; on a Xeon without AMX "
      "it measured slower than float32");
  ::unsetenv("ONEDNN_MAX_CPU_ISA");
}

TEST_F(TrainerTest, ModelThatCannotScoreTheClassesIsAConfigError) {
  const fs::path data = write_dataset(dir_ / "registry", 40);
  auto source = batches(data);
  TrainerConfig c = config();
  c.model["layers"].back() = Json{{"linear", {{"out", 3}}}};
  try {
    Trainer trainer(c, *source, {});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(),
                ::testing::HasSubstr("cannot score 4 classes: the last layer needs out: 4"));
  }
}

}  // namespace
}  // namespace kiln::train
