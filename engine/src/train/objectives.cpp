// Every loss and optimizer of the trainer, listed once. Adding one: a descriptor
// here (its op in ops/, its update rule in nn/optimizer.h), nothing else.
#include <kiln/error.h>
#include <kiln/train/objectives.h>

#include <fmt/format.h>

#include "ops/loss.h"

namespace kiln::train {
namespace {

const LossType kCrossEntropy{"cross_entropy", true,
                             [](const Tensor& out, const Tensor& labels, float label_smoothing,
                                float grad_scale, Tensor& dout, Tensor& loss_sum, Tensor& correct) {
                               // Labels on a GPU come from a source that checked them on the host
                               // (batches.h); reading them back here would wait for the device
                               // every step.
                               if (labels.device().is_cpu()) ops::check_labels(labels, out.dim(1));
                               ops::softmax_cross_entropy(out, labels, label_smoothing, grad_scale,
                                                          dout, loss_sum, correct);
                             }};

const LossType kMeanSquaredError{"mse", false,
                                 [](const Tensor& out, const Tensor& values, float,
                                    float grad_scale, Tensor& dout, Tensor& loss_sum, Tensor&) {
                                   ops::mean_squared_error(out.reshape({out.dim(0), -1}),
                                                           values.reshape({out.dim(0), -1}),
                                                           grad_scale, dout, loss_sum);
                                 }};

const OptimizerType kAdamW{"adamw", false, [](const OptimizerConfig& c, double lr) {
                             return nn::make_adamw({lr, c.beta1, c.beta2, c.eps, c.weight_decay});
                           }};

const OptimizerType kSgd{"sgd", true, [](const OptimizerConfig& c, double lr) {
                           return nn::make_sgd({lr, c.momentum, c.nesterov, c.weight_decay});
                         }};

template <class Type>
std::vector<std::string> names(const std::vector<const Type*>& types) {
  std::vector<std::string> out;
  for (const Type* type : types) out.emplace_back(type->name);
  return out;
}

template <class Type>
const Type& find(const std::vector<const Type*>& types, const std::string& name, const char* what) {
  for (const Type* type : types)
    if (name == type->name) return *type;
  throw ConfigError(
      fmt::format("{} '{}': expected {}", what, name, fmt::join(names(types), " or ")));
}

}  // namespace

const std::vector<const LossType*>& loss_types() {
  static const std::vector<const LossType*> types = {&kCrossEntropy, &kMeanSquaredError};
  return types;
}

const std::vector<const OptimizerType*>& optimizer_types() {
  static const std::vector<const OptimizerType*> types = {&kAdamW, &kSgd};
  return types;
}

std::vector<std::string> loss_names() { return names(loss_types()); }
std::vector<std::string> optimizer_names() { return names(optimizer_types()); }

const LossType& loss_type(const std::string& name) { return find(loss_types(), name, "loss"); }
const OptimizerType& optimizer_type(const std::string& name) {
  return find(optimizer_types(), name, "optimizer");
}

}  // namespace kiln::train
