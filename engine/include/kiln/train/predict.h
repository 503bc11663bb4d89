// Running a saved classifier over a dataset version: what evaluation needs.
#pragma once

#include <kiln/tensor/device.h>
#include <kiln/train/batches.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

namespace kiln::nn {
class Model;
}

namespace kiln::train {

struct Predictions {
  std::int64_t classes = 0;             // the model's outputs
  std::vector<std::int32_t> labels;     // from the dataset's /y
  std::vector<std::int32_t> predicted;  // argmax of the logits
  std::vector<double> losses;           // softmax cross-entropy per row
};

// Loads the model (safetensors written by the train stage) and runs it in eval mode
// over /x in batches. DataError when the model's input does not fit the rows of /x
// or a label is outside the model's classes. `progress(done, total)` after each batch.
Predictions predict_classes(const std::filesystem::path& model_file,
                            const std::filesystem::path& dataset_file, std::int64_t batch_size,
                            Device device = Device::cpu(),
                            const std::function<void(std::int64_t, std::int64_t)>& progress = {});

// The same for a model in memory (the train stage scoring its validation split after
// each epoch), on the model's device, with the preprocessing the model trains with
// (`preprocess`, the train stage's parameter) minus its random augmentation.
Predictions predict_classes(nn::Model& model, const nlohmann::json& preprocess,
                            const std::filesystem::path& dataset_file, std::int64_t batch_size,
                            const std::function<void(std::int64_t, std::int64_t)>& progress = {});

// A dataset version's batches as the model sees them in evaluation: in order, its
// input shape, on its device, normalised as in training (`preprocess`) without the
// random augmentation. DataError when a label is outside the model's classes.
// Each start_epoch(0, 0) goes over the rows again; a data set that fits the
// loader's budget is read from the file once.
std::unique_ptr<BatchSource> evaluation_batches(const nn::Model& model,
                                                const nlohmann::json& preprocess,
                                                const std::filesystem::path& dataset_file,
                                                std::int64_t batch_size);

// Accuracy and mean cross-entropy of a classifier in memory over all rows of
// `batches` (evaluation_batches; the train stage's validation split after each
// epoch, the same source every time): batch losses summed on the model's device
// and read once at the end, no per-row work on the host.
struct Scores {
  double accuracy = 0.0;
  double loss = 0.0;
  std::int64_t rows = 0;
};
Scores score_classifier(nn::Model& model, BatchSource& batches);

}  // namespace kiln::train
