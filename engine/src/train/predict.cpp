#include <kiln/error.h>
#include <kiln/nn/model.h>
#include <kiln/train/batches.h>
#include <kiln/train/predict.h>

#include <fmt/format.h>

#include <algorithm>

#include "core/stored_json.h"
#include "ops/loss.h"

namespace kiln::train {

Predictions predict_classes(const std::filesystem::path& model_file,
                            const std::filesystem::path& dataset_file, std::int64_t batch_size,
                            Device device,
                            const std::function<void(std::int64_t, std::int64_t)>& progress) {
  std::map<std::string, std::string> metadata;
  nn::Model model = nn::Model::load(model_file, device, &metadata);
  if (model.output_shape().size() != 1)
    throw DataError(fmt::format("{}: the model outputs {}, not class scores", model_file.string(),
                                shape_string(model.output_shape())));
  // The normalisation the model was trained with.
  nlohmann::json preprocess = nlohmann::json::object();
  if (const auto it = metadata.find("kiln.preprocess"); it != metadata.end())
    preprocess = parse_stored_json(it->second, model_file.string() + ": kiln.preprocess");
  return predict_classes(model, preprocess, dataset_file, batch_size, progress);
}

std::unique_ptr<BatchSource> evaluation_batches(const nn::Model& model,
                                                const nlohmann::json& preprocess,
                                                const std::filesystem::path& dataset_file,
                                                std::int64_t batch_size) {
  BatchOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.sample_shape = model.input_shape();
  options.device = model.device();
  options.preprocess = preprocess;
  options.augment = false;
  auto batches = dataset_batches(dataset_file, options);
  const std::int64_t classes = model.output_shape()[0];
  if (batches->classes() > classes)
    throw DataError(fmt::format("{}: labels go up to {} but the model scores {} classes",
                                dataset_file.string(), batches->classes() - 1, classes));
  return batches;
}

Predictions predict_classes(nn::Model& model, const nlohmann::json& preprocess,
                            const std::filesystem::path& dataset_file, std::int64_t batch_size,
                            const std::function<void(std::int64_t, std::int64_t)>& progress) {
  auto batches = evaluation_batches(model, preprocess, dataset_file, batch_size);
  batches->start_epoch(0, 0);
  Predictions result;
  result.classes = model.output_shape()[0];
  Batch batch;
  std::int64_t done = 0;
  while (batches->next(batch)) {
    nn::ForwardContext context;
    const Tensor logits = model.forward(batch.x, {nn::Mode::Eval, 0, 0}, context).to(Device::cpu());
    const Tensor labels = batch.y.to(Device::cpu());
    const std::int64_t rows = logits.dim(0);
    for (std::int64_t i = 0; i < rows; ++i) {
      Tensor row_loss = Tensor::zeros({1}), row_correct = Tensor::zeros({1}), none;
      const Tensor row = logits.rows(i, i + 1);
      ops::softmax_cross_entropy(row, labels.rows(i, i + 1), 0.0f, 1.0f, none, row_loss,
                                 row_correct);
      const float* scores = row.data<float>();
      result.labels.push_back(labels.data<std::int32_t>()[i]);
      result.predicted.push_back(
          static_cast<std::int32_t>(std::max_element(scores, scores + result.classes) - scores));
      result.losses.push_back(row_loss.data<float>()[0]);
    }
    done += rows;
    if (progress) progress(done, batches->rows());
  }
  return result;
}

Scores score_classifier(nn::Model& model, BatchSource& batches) {
  batches.start_epoch(0, 0);
  Tensor loss_sum = Tensor::zeros({1}).to(model.device());
  Tensor correct = Tensor::zeros({1}).to(model.device());
  Tensor none;
  Scores scores;
  Batch batch;
  while (batches.next(batch)) {
    nn::ForwardContext context;
    const Tensor logits = model.forward(batch.x, {nn::Mode::Eval, 0, 0}, context);
    ops::softmax_cross_entropy(logits, batch.y, 0.0f, 1.0f, none, loss_sum, correct);
    scores.rows += logits.dim(0);
  }
  if (scores.rows == 0) return scores;
  const double rows = static_cast<double>(scores.rows);
  scores.loss = loss_sum.to(Device::cpu()).data<float>()[0] / rows;
  scores.accuracy = correct.to(Device::cpu()).data<float>()[0] / rows;
  return scores;
}

}  // namespace kiln::train
