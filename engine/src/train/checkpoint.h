// Private: training checkpoints. One safetensors file, replaced atomically:
// tensors "model/<parameter>", "buffer/<name>", "optimizer/<state name>", and the
// position and scalars as JSON under "kiln.checkpoint" in the metadata.
#pragma once

#include <kiln/nn/model.h>
#include <kiln/nn/optimizer.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>

namespace kiln::train {

struct Position {
  std::int64_t step = 0;   // optimizer steps done
  std::int64_t epoch = 0;  // epoch of the next batch
  std::int64_t batch = 0;  // next batch within that epoch
};

void save_checkpoint(const std::filesystem::path& file, nn::Model& model,
                     const nn::Optimizer& optimizer, const Position& position);

// Restores model and optimizer; std::nullopt when `file` does not exist. DataError
// naming the file when it does not fit the model.
std::optional<Position> load_checkpoint(const std::filesystem::path& file, nn::Model& model,
                                        nn::Optimizer& optimizer);

}  // namespace kiln::train
