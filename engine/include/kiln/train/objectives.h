// The losses and optimizers the trainer knows: one small descriptor each, listed
// once (engine/src/train/objectives.cpp). The trainer and the train stage ask a
// descriptor instead of comparing names.
#pragma once

#include <kiln/nn/optimizer.h>
#include <kiln/tensor/tensor.h>
#include <kiln/train/trainer.h>

#include <memory>
#include <string>
#include <vector>

namespace kiln::train {

struct LossType {
  const char* name;
  // True: the targets are int32 class labels, the output holds one logit per class
  // and accuracy is counted. False: float32 targets shaped like the output.
  bool classifies;
  // Adds the batch's summed loss to `loss_sum` (and its correct predictions to
  // `correct`, for a classifier) and writes dout = grad_scale * d(sum)/d(out).
  void (*compute)(const Tensor& out, const Tensor& targets, float label_smoothing, float grad_scale,
                  Tensor& dout, Tensor& loss_sum, Tensor& correct);
};

struct OptimizerType {
  const char* name;
  bool momentum;  // takes momentum and nesterov
  std::unique_ptr<nn::Optimizer> (*make)(const OptimizerConfig& config, double lr);
};

// In the order the train stage offers them: the first is the default.
const std::vector<const LossType*>& loss_types();
const std::vector<const OptimizerType*>& optimizer_types();
std::vector<std::string> loss_names();
std::vector<std::string> optimizer_names();
// ConfigError naming the known ones for an unknown name.
const LossType& loss_type(const std::string& name);
const OptimizerType& optimizer_type(const std::string& name);

}  // namespace kiln::train
