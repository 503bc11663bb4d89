// Loss functions. Both add the batch's summed loss to a one-element tensor on the
// tensor's device and write the gradient scaled by `grad_scale` (1 / (batch x
// accumulation steps) for a mean over the whole step), so no host synchronisation
// is needed per step.
#pragma once

#include "ops/dispatch.h"

namespace kiln::ops {

template <DeviceType D>
struct SoftmaxCrossEntropy {
  // logits [N, C] float32, labels [N] int32 in [0, C). Target: 1 - s + s/C on the
  // label, s/C elsewhere (label smoothing s). loss_sum[0] += sum of row losses;
  // correct[0] += rows whose largest logit is the label; dlogits (if defined) =
  // (softmax - target) * grad_scale.
  static void run(const Tensor& logits, const Tensor& labels, float smoothing, float grad_scale,
                  Tensor& dlogits, Tensor& loss_sum, Tensor& correct);
};

template <DeviceType D>
struct MeanSquaredError {
  // pred, target [N, F]: row loss = mean over F of (pred - target)^2;
  // loss_sum[0] += sum of row losses; dpred (if defined) = 2 (pred - target) / F * grad_scale.
  static void run(const Tensor& pred, const Tensor& target, float grad_scale, Tensor& dpred,
                  Tensor& loss_sum);
};

KILN_OP_HAS_CUDA(SoftmaxCrossEntropy)
KILN_OP_HAS_CUDA(MeanSquaredError)

// DataError naming the first label outside [0, classes) (checked on the host: labels
// come from the data loader before they reach a device).
void check_labels(const Tensor& labels, std::int64_t classes);

void softmax_cross_entropy(const Tensor& logits, const Tensor& labels, float smoothing,
                           float grad_scale, Tensor& dlogits, Tensor& loss_sum, Tensor& correct);
void mean_squared_error(const Tensor& pred, const Tensor& target, float grad_scale, Tensor& dpred,
                        Tensor& loss_sum);

}  // namespace kiln::ops
