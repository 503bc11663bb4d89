// The per-tensor update rules of the optimizers and the reductions that gradient
// clipping needs. Scalars are computed by the caller in double (as Python floats
// are in torch.optim) and applied as float, in torch's order of operations.
#pragma once

#include "ops/dispatch.h"

#include <vector>

namespace kiln::ops {

struct SgdScalars {
  float lr = 0, weight_decay = 0;
  float buffer_momentum = 0;    // 0 on the first step, when torch sets b = d
  float nesterov_momentum = 0;  // mu when nesterov, else unused
  bool momentum = false, nesterov = false;
};

struct AdamWScalars {
  float decay;  // 1 - lr * weight_decay
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float step_size;         // lr / (1 - beta1^t)
  float correction2_sqrt;  // sqrt(1 - beta2^t)
  float eps;
};

template <DeviceType D>
struct SgdStep {
  // d = g + wd p; b = b_m b + d; d = nesterov ? d + mu b : (momentum ? b : d); p -= lr d.
  static void run(const SgdScalars& s, Tensor& value, const Tensor& grad, Tensor& buffer);
};

template <DeviceType D>
struct AdamWStep {
  // p *= decay; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
  // p -= step_size m / (sqrt(v) / correction2_sqrt + eps).
  static void run(const AdamWScalars& s, Tensor& value, const Tensor& grad, Tensor& m, Tensor& v);
};

// One update over many parameters at once: the CUDA twin runs one kernel per 48
// tensors (multi-tensor apply) instead of one per parameter, which is most of an
// optimizer step's cost for small models. `state[0]` is SGD's momentum buffer (or
// undefined without momentum) and AdamW's m, `state[1]` AdamW's v.
struct ParameterUpdate {
  Tensor* value = nullptr;
  const Tensor* grad = nullptr;
  Tensor* state[2] = {nullptr, nullptr};
};

template <DeviceType D>
struct SgdMultiStep {
  static void run(const SgdScalars& s, const std::vector<ParameterUpdate>& updates);
};

template <DeviceType D>
struct AdamWMultiStep {
  static void run(const AdamWScalars& s, const std::vector<ParameterUpdate>& updates);
};

template <DeviceType D>
struct SumSquares {
  // out[0] += sum x^2 (accumulated in double on the CPU).
  static void run(const Tensor& x, Tensor& out);
};

template <DeviceType D>
struct Scale {
  static void run(Tensor& x, float factor);
};

// Gradient clipping without reading the norm back to the host: the coefficient
// max_norm / (sqrt(sum_squares[0]) + 1e-6) is computed in double where the data
// is, and x is scaled by it (as float) when it is below 1.
template <DeviceType D>
struct ClipByNorm {
  static void run(Tensor& x, const Tensor& sum_squares, float max_norm);
};

// out[0] += sqrt(sum_squares[0]): the norm, kept on the device for a later read.
template <DeviceType D>
struct AddNorm {
  static void run(const Tensor& sum_squares, Tensor& out);
};

KILN_OP_HAS_CUDA(SgdStep)
KILN_OP_HAS_CUDA(AdamWStep)
KILN_OP_HAS_CUDA(SgdMultiStep)
KILN_OP_HAS_CUDA(AdamWMultiStep)
KILN_OP_HAS_CUDA(SumSquares)
KILN_OP_HAS_CUDA(Scale)
KILN_OP_HAS_CUDA(ClipByNorm)
KILN_OP_HAS_CUDA(AddNorm)

void sgd_step(const SgdScalars& s, Tensor& value, const Tensor& grad, Tensor& buffer);
void adamw_step(const AdamWScalars& s, Tensor& value, const Tensor& grad, Tensor& m, Tensor& v);
// All updates on one device; shapes checked as the single-tensor steps do.
void sgd_multi_step(const SgdScalars& s, const std::vector<ParameterUpdate>& updates);
void adamw_multi_step(const AdamWScalars& s, const std::vector<ParameterUpdate>& updates);
void sum_squares(const Tensor& x, Tensor& out);
void scale(Tensor& x, float factor);
void clip_by_norm(Tensor& x, const Tensor& sum_squares, float max_norm);
void add_norm(const Tensor& sum_squares, Tensor& out);

}  // namespace kiln::ops
