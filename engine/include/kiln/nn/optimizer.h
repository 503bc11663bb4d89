// Optimizers over Parameter lists: SGD (momentum, Nesterov, weight decay) and
// AdamW (decoupled weight decay, Loshchilov & Hutter 2019), with the same update
// rules as torch.optim.SGD and torch.optim.AdamW.
#pragma once

#include <kiln/nn/mlp.h>

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
  virtual void step(std::vector<Parameter>& parameters) = 0;
  virtual void set_lr(double lr) = 0;
  virtual double lr() const = 0;
};

std::unique_ptr<Optimizer> make_sgd(const SgdOptions& options);
std::unique_ptr<Optimizer> make_adamw(const AdamWOptions& options);

}  // namespace kiln::nn
