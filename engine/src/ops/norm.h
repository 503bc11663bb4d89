// Normalisation layers' math: batch norm over NCHW channels, layer norm over the
// last axis. Both save the mean and 1/std of the forward pass for backward.
#pragma once

#include "ops/dispatch.h"

namespace kiln::ops {

struct BatchNormState {
  Tensor mean;     // [C] batch statistics of the last training forward
  Tensor inv_std;  // [C]
};

template <DeviceType D>
struct BatchNorm2d {
  // Training: normalises with the batch's statistics, saves them, and updates the
  // running statistics (running = (1 - momentum) running + momentum batch; the
  // running variance takes the unbiased batch variance, as torch does).
  static void forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                            float momentum, Tensor& running_mean, Tensor& running_var, Tensor& y,
                            BatchNormState& saved);
  static void forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                           const Tensor& running_mean, const Tensor& running_var, Tensor& y);
  // dx = gamma inv_std / M (M dy - sum dy - xhat sum(dy xhat)); dgamma, dbeta accumulate.
  static void backward(const Tensor& x, const Tensor& gamma, const BatchNormState& saved,
                       const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta);
};

template <DeviceType D>
struct LayerNorm {
  static void forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                      Tensor& y, Tensor& mean, Tensor& inv_std);
  static void backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                       const Tensor& inv_std, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                       Tensor& dbeta);
};

KILN_OP_HAS_CUDA(BatchNorm2d)
KILN_OP_HAS_CUDA(LayerNorm)

void batch_norm2d_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                float momentum, Tensor& running_mean, Tensor& running_var,
                                Tensor& y, BatchNormState& saved);
void batch_norm2d_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                               const Tensor& running_mean, const Tensor& running_var, Tensor& y);
void batch_norm2d_backward(const Tensor& x, const Tensor& gamma, const BatchNormState& saved,
                           const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta);
void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                        Tensor& y, Tensor& mean, Tensor& inv_std);
void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                         const Tensor& inv_std, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                         Tensor& dbeta);

}  // namespace kiln::ops
