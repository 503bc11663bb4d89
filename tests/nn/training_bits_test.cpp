// Pins CPU training bit for bit: a small MLP and a small CNN (every layer type) are
// trained with fixed seeds on synthetic data, and the SHA-256 of their final weights
// and buffers is asserted. A refactor of the layers, ops or optimizers that reorders
// one floating-point operation on the CPU changes a hash here.
//
// The hashes were taken on x86-64 with AVX-512 and one CPU thread (oneDNN picks its
// GEMM and convolution kernels by the CPU's instruction set, so a CPU with another
// one may round them differently: a failure there shows the new values, which are
// checked once against the unchanged code before they are pinned). They last
// changed when GEMMs moved from OpenBLAS to oneDNN.
#include <kiln/cpu_threads.h>
#include <kiln/hash.h>
#include <kiln/nn/model.h>
#include <kiln/nn/optimizer.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include "nn/gradient_checker.h"
#include "ops/loss.h"

namespace kiln::nn {
namespace {

using Json = nlohmann::json;

struct Batch {
  Tensor images;  // [N, 2, 8, 8]
  Tensor labels;  // [N] int32
};

// Pixels U[0, 1) with a label-dependent bright row, from fixed Philox addresses.
Batch synthetic(std::int64_t size, std::uint64_t seed) {
  Batch batch{Tensor::empty({size, 2, 8, 8}), Tensor::empty({size}, DType::I32)};
  float* pixels = batch.images.data<float>();
  for (std::int64_t n = 0; n < size; ++n) {
    const auto label = static_cast<std::int32_t>(uniform_below(seed, RngStream::Shuffle, n, 5));
    batch.labels.data<std::int32_t>()[n] = label;
    for (std::int64_t i = 0; i < 128; ++i)
      pixels[n * 128 + i] =
          uniform01(seed, RngStream::Augment, n * 128 + i) + ((i % 64) / 8 == label ? 1.0f : 0.0f);
  }
  return batch;
}

// `steps` mini-batches of 16 with gradient clipping; returns the SHA-256 of every
// parameter and buffer (name, then bytes) after training.
std::string train_and_hash(const Json& layers, Optimizer& optimizer, int steps) {
  set_cpu_threads(1);
  const Batch data = synthetic(64, 7);
  Model model = test::build_model(layers, {2, 8, 8}, Device::cpu(), 13,
                                  Json{{"pair", Json::parse(R"([{"conv2d": {"out": 4,
                                    "padding": 1}}, {"batchnorm2d": {}}, "gelu"])")}});
  const std::int64_t batch = 16;
  for (int step = 0; step < steps; ++step) {
    const std::int64_t begin = (step * batch) % 64;
    ForwardContext context;
    const Tensor logits =
        model.forward(data.images.rows(begin, begin + batch), {Mode::Train, 9, step}, context);
    Tensor dlogits = Tensor::empty(logits.shape()), loss = Tensor::zeros({1}),
           correct = Tensor::zeros({1});
    ops::softmax_cross_entropy(logits, data.labels.rows(begin, begin + batch), 0.1f,
                               1.0f / static_cast<float>(batch), dlogits, loss, correct);
    model.zero_grad();
    model.backward(context, dlogits);
    clip_grad_norm(model.parameters(), 1.0);
    optimizer.step(model.parameters());
  }
  Sha256 hash;
  for (const Parameter* p : model.parameters()) {
    hash.update_field(p->name);
    hash.update(p->value.raw(), p->value.nbytes());
  }
  for (const auto& [name, tensor] : model.buffers()) {
    hash.update_field(name);
    hash.update(tensor->raw(), tensor->nbytes());
  }
  set_cpu_threads(0);
  return hash.hex_digest();
}

const char* kMlp = R"(["flatten", {"linear": {"out": 32}}, "relu", {"dropout": {"p": 0.2}},
    {"linear": {"out": 16}}, "gelu", {"layernorm": {}}, {"linear": {"out": 5}}])";
const char* kCnn = R"([{"conv2d": {"out": 4, "kernel": 3, "padding": 1}}, {"batchnorm2d": {}},
    "relu", {"residual": [{"block": "pair"}]}, {"maxpool2d": {}},
    {"conv2d": {"out": 6, "kernel": 3, "padding": 1, "bias": false}}, "gelu",
    {"avgpool2d": {"kernel": 2}}, {"residual": [{"conv2d": {"out": 6, "padding": 1}}, "relu"]},
    "global_avgpool",
    {"dropout": {"p": 0.1}}, {"linear": {"out": 5}}])";

TEST(TrainingBits, MlpAdamW) {
  auto optimizer = make_adamw({.lr = 1e-2, .weight_decay = 0.01});
  EXPECT_EQ(train_and_hash(Json::parse(kMlp), *optimizer, 12),
            "5415d7a31309026dac655d5db64f5b17aa039d19c1b3d0ae7e7aabe4a6fd2e87");
}

TEST(TrainingBits, MlpSgdNesterov) {
  auto optimizer = make_sgd({.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-4});
  EXPECT_EQ(train_and_hash(Json::parse(kMlp), *optimizer, 12),
            "ddaad483fc654c239f2c644d9072df33bcffb60485b05905cc8f7aa4d612483d");
}

TEST(TrainingBits, CnnAdamW) {
  auto optimizer = make_adamw({.lr = 1e-2});
  EXPECT_EQ(train_and_hash(Json::parse(kCnn), *optimizer, 8),
            "b666a5c15f4bcf7bf202365de283882db360cc87fddea8afb56c7e17a464a659");
}

}  // namespace
}  // namespace kiln::nn
