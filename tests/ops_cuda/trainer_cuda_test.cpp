// The training loop on a GPU against the same loop on the CPU: batches from a
// dataset version (u8 images through pinned memory and the fused preprocessing
// kernel on the device; float32 features through pinned memory), forward and
// backward, loss and accuracy kept on the device between metric lines, gradient
// clipping on the device, and the optimizer. Plain SGD for a few steps keeps the
// float32 differences of the ops (1e-5 relative each) from compounding: weights
// agree within 1e-4 relative, the logged loss within 1e-4.
//
// And the step replayed as a CUDA graph against the same steps launched one by
// one on the GPU: AdamW under a cosine schedule (its scalars change every step)
// and dropout (its mask too) show that a replay takes each step's arguments.
// The same kernels with the same arguments: within 1e-6 relative (cuDNN's
// backward-filter algorithms may add in another order from run to run).
#include <kiln/data/dataset.h>
#include <kiln/run_log.h>
#include <kiln/train/trainer.h>

#include <cmath>
#include <map>

#include "ops_cuda/cuda_twin.h"
#include "support/memory_run_log.h"
#include "support/support.h"

namespace kiln::ops::test {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;


// 12x12 u8 images (or the same as float32 in [0, 1]), class = brightest quadrant.
fs::path write_images(const fs::path& registry, std::int64_t rows, bool as_float) {
  data::Array x{"x", as_float ? DType::F32 : DType::U8, {rows, 12, 12}, {}};
  data::Array y{"y", DType::U8, {rows}, {}};
  std::vector<float> values;
  for (std::int64_t i = 0; i < rows; ++i) {
    const int label = static_cast<int>(i % 4);
    y.bytes.push_back(static_cast<std::uint8_t>(label));
    for (int p = 0; p < 144; ++p) {
      const int quadrant = (p / 72) * 2 + (p % 12) / 6;
      const int pixel = (quadrant == label ? 180 : 40) + static_cast<int>((i * 7 + p * 13) % 60);
      if (as_float)
        values.push_back(static_cast<float>(pixel) / 255.0f);
      else
        x.bytes.push_back(static_cast<std::uint8_t>(pixel));
    }
  }
  if (as_float) {
    x.bytes.resize(values.size() * sizeof(float));
    std::memcpy(x.bytes.data(), values.data(), x.bytes.size());
  }
  return data::DatasetStore(registry)
      .put(as_float ? "floats" : "images", {x, y}, Json::object())
      .file;
}

struct Trained {
  std::int64_t graph_steps = 0;
  std::vector<Tensor> weights;
  std::map<std::string, std::vector<std::pair<std::int64_t, double>>> metrics;
};

struct TrainPlan {
  std::string optimizer = "sgd";
  bool dropout = false;
  bool cuda_graph = true;
  std::int64_t epochs = 2;
};

Trained train(const fs::path& data, Device device, const Json& preprocess,
              const TrainPlan& plan = {}) {
  train::BatchOptions options;
  options.batch_size = 32;
  options.seed = 5;
  options.sample_shape = {1, 12, 12};
  options.device = device;
  options.preprocess = preprocess;
  auto batches = train::dataset_batches(data, options);
  train::TrainerConfig config;
  config.model = Json::parse(R"({"input": [1, 12, 12], "layers": [
      {"conv2d": {"out": 4, "kernel": 3, "padding": 1}}, "gelu", {"avgpool2d": {}},
      "flatten", {"linear": {"out": 4}}]})");
  if (plan.dropout)
    config.model["layers"].insert(config.model["layers"].end() - 1,
                                  Json::parse(R"({"dropout": {"p": 0.3}})"));
  config.epochs = plan.epochs;
  config.optimizer.kind = plan.optimizer;
  config.optimizer.momentum = 0.0;
  config.schedule.kind = plan.optimizer == "adamw" ? "cosine" : "constant";
  config.schedule.lr = plan.optimizer == "adamw" ? 0.01 : 0.05;
  config.cuda_graph = plan.cuda_graph;
  config.clip_norm = 0.5;
  config.log_every = 3;
  config.seed = 5;
  config.device = device;
  kiln::test::MemoryRunLog run;
  train::Trainer trainer(config, *batches, {&run, nullptr, [] { return false; }, {}});
  const train::TrainResult result = trainer.run();
  Trained out;
  out.graph_steps = result.graph_steps;
  for (const nn::Parameter* p : trainer.model().parameters())
    out.weights.push_back(p->value.to(Device::cpu()));
  out.metrics = run.metrics;
  return out;
}

void compare(const Trained& gpu_run, const Trained& cpu_run, double rtol = 1e-4) {
  ASSERT_EQ(gpu_run.weights.size(), cpu_run.weights.size());
  for (std::size_t i = 0; i < cpu_run.weights.size(); ++i)
    expect_close(gpu_run.weights[i], cpu_run.weights[i], rtol, "weight " + std::to_string(i));
  for (const char* key : {"train/loss", "train/accuracy", "train/grad_norm"}) {
    const auto& g = gpu_run.metrics.at(key);
    const auto& c = cpu_run.metrics.at(key);
    ASSERT_EQ(g.size(), c.size()) << key;
    for (std::size_t i = 0; i < c.size(); ++i) {
      EXPECT_EQ(g[i].first, c[i].first) << key;
      EXPECT_NEAR(g[i].second, c[i].second, rtol * (std::fabs(c[i].second) + 1)) << key;
    }
  }
}

class TrainerCuda : public CudaTwin {
 protected:
  kiln::test::TempDir dir_;
};

// Augmented u8 images: the kernel's crops, flips and erasing are the CPU twin's bits.
TEST_F(TrainerCuda, ImagesPreprocessedOnTheGpuTrainAsOnTheCpu) {
  const fs::path data = write_images(dir_ / "registry", 200, false);
  const Json preprocess = Json::parse(
      R"({"mean": [0.4], "std": [0.3], "crop_padding": 2, "flip": 0.5, "erase": 0.25})");
  compare(train(data, gpu(), preprocess), train(data, Device::cpu(), preprocess));
}

// 200 rows in batches of 32: 6 full batches and one of 8 per epoch. Three eager
// steps, then the graph is captured and replayed for the full batches; the short
// ones run eagerly between replays.
TEST_F(TrainerCuda, GraphReplayEqualsEagerSteps) {
  const fs::path data = write_images(dir_ / "registry", 200, false);
  const Json preprocess = Json::parse(R"({"crop_padding": 2, "flip": 0.5})");
  for (const char* optimizer : {"adamw", "sgd"}) {
    SCOPED_TRACE(optimizer);
    const TrainPlan graph{.optimizer = optimizer, .dropout = true, .cuda_graph = true, .epochs = 3};
    TrainPlan eager = graph;
    eager.cuda_graph = false;
    const Trained replayed = train(data, gpu(), preprocess, graph);
    const Trained launched = train(data, gpu(), preprocess, eager);
    EXPECT_EQ(replayed.graph_steps, 3 * 6 - 3) << "every full batch after the eager ones";
    EXPECT_EQ(launched.graph_steps, 0);
    compare(replayed, launched, 1e-6);
  }
}

TEST_F(TrainerCuda, FloatFeaturesTrainAsOnTheCpu) {
  const fs::path data = write_images(dir_ / "registry", 200, true);
  compare(train(data, gpu(), nullptr), train(data, Device::cpu(), nullptr));
}

}  // namespace
}  // namespace kiln::ops::test
