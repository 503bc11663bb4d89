// Optimizers over a model's parameters: SGD (momentum, Nesterov, weight decay) and
// AdamW (decoupled weight decay, Loshchilov & Hutter 2019), with the update rules
// of torch.optim.SGD and torch.optim.AdamW, plus gradient clipping by global norm.
// State is kept per parameter name, so a checkpoint restores it by name.
#pragma once

#include <kiln/nn/model.h>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln::nn {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

class Optimizer {
 public:
  virtual ~Optimizer();
  // One update of every parameter from its grad.
  virtual void step(const std::vector<Parameter*>& parameters) = 0;
  virtual void set_lr(double lr) = 0;
  virtual double lr() const = 0;

  // For checkpoints: state tensors by name ("adamw.m.layers.0.weight") and scalars.
  virtual std::map<std::string, Tensor> state_tensors() const = 0;
  virtual nlohmann::json state_scalars() const = 0;
  // Restores what state_tensors/state_scalars gave; DataError when a tensor is
  // missing or has another shape.
  virtual void load_state(const std::vector<Parameter*>& parameters,
                          const std::map<std::string, Tensor>& tensors,
                          const nlohmann::json& scalars) = 0;
};

// ConfigError for negative or non-finite settings, betas outside [0, 1), Nesterov
// without momentum.
std::unique_ptr<Optimizer> make_sgd(const SgdOptions& options);
std::unique_ptr<Optimizer> make_adamw(const AdamWOptions& options);

// Scales every gradient by min(1, max_norm / (norm + 1e-6)) where norm is the
// global L2 norm over all gradients (torch.nn.utils.clip_grad_norm_). Returns norm.
double clip_grad_norm(const std::vector<Parameter*>& parameters, double max_norm);
// The same without waiting for the device: the norm is added to `norm_sum` (one
// float32 element on the gradients' device) for a later read.
void clip_grad_norm(const std::vector<Parameter*>& parameters, double max_norm, Tensor& norm_sum);
// The global L2 norm of the gradients.
double grad_norm(const std::vector<Parameter*>& parameters);

}  // namespace kiln::nn
