// A small synthetic classification task in IDX files (learnable in a few epochs:
// each class lights its own band of rows), a pipeline over it, and a runner for
// the kiln executable against a registry in a temporary directory.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "support/support.h"

namespace kiln::test {

inline void write_idx(const std::filesystem::path& path, std::uint8_t type,
                      const std::vector<std::uint32_t>& dims,
                      const std::vector<std::uint8_t>& data) {
  std::string bytes = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (const std::uint32_t dim : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(dim >> shift));
  bytes.append(data.begin(), data.end());
  write_text(path, bytes);
}

// `rows` images of 28x28 with labels 0..9: class k is bright in rows 2k..2k+4, with noise.
inline void write_synthetic_idx(const std::filesystem::path& dir, const std::string& prefix,
                                std::uint32_t rows, std::uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<std::uint8_t> images(rows * 784u), labels(rows);
  for (std::uint32_t i = 0; i < rows; ++i) {
    const std::uint8_t label = static_cast<std::uint8_t>(i % 10);
    labels[i] = label;
    for (std::uint32_t p = 0; p < 784; ++p) {
      const std::uint32_t row = p / 28;
      const bool lit = row >= 2u * label && row < 2u * label + 5u;
      images[i * 784 + p] = static_cast<std::uint8_t>((lit ? 160 : 0) + random() % 60);
    }
  }
  write_idx(dir / (prefix + "-images.idx"), 0x08, {rows, 28, 28}, images);
  write_idx(dir / (prefix + "-labels.idx"), 0x08, {rows}, labels);
}

inline std::string synthetic_pipeline() {
  return R"(name: synthetic
stages:
  train_data:
    uses: idx_import
    with: {images: train-images.idx, labels: train-labels.idx, name: synthetic-train}
  test_data:
    uses: idx_import
    with: {images: test-images.idx, labels: test-labels.idx, name: synthetic-test}
  train:
    uses: train
    needs: [train_data]
    with:
      model: {layers: [flatten, {linear: {out: 32}}, relu, {linear: {out: classes}}]}
      epochs: 3
      batch_size: 50
      lr: 0.003
      log_every: 5
      threads: 1
  evaluate:
    uses: evaluate
    needs: [train, test_data]
    with: {gate: {accuracy: 0.5}}
  register:
    uses: register
    needs: [train, evaluate]
    with: {model_name: synthetic-mlp}
)";
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_synthetic_idx(dir_.path(), "train", 1000, 1);
    write_synthetic_idx(dir_.path(), "test", 200, 2);
    write_text(dir_ / "p.yaml", synthetic_pipeline());
  }

  CommandResult kiln(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), std::string(KILN_BINARY_DIR) + "/bin/kiln");
    env.emplace("KILN_REGISTRY", registry().string());
    env.emplace("KILN_PLAIN_PROGRESS", "1");
    return run_command(args, env, dir_.path());
  }
  std::filesystem::path registry() const { return dir_ / "registry"; }

  TempDir dir_;
};

}  // namespace kiln::test
