// Matrix products and the bias terms of Linear.
#pragma once

#include "ops/dispatch.h"
#include "ops/precision.h"

namespace kiln::ops {

// c = alpha * op(a) * op(b) + beta * c, plus bias[j] in column j of every row when
// bias is defined, for 2-D row-major float32 tensors, op(x) = x or x^T. c must have
// the product's shape. The CUDA twin adds the bias in cuBLASLt's epilogue.
template <DeviceType D>
struct Gemm {
  static void run(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c,
                  float alpha, float beta, const Tensor& bias, MathPrecision precision);
};

// y[n, f] += bias[f] for every row n (y is [N, F] or viewed so).
template <DeviceType D>
struct BiasAdd {
  static void run(Tensor& y, const Tensor& bias);
};

// out[f] = (accumulate ? out[f] : 0) + sum_n dy[n, f].
template <DeviceType D>
struct SumRows {
  static void run(const Tensor& dy, Tensor& out, bool accumulate);
};

KILN_OP_HAS_CUDA(Gemm)
KILN_OP_HAS_CUDA(BiasAdd)
KILN_OP_HAS_CUDA(SumRows)

void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c,
          float alpha = 1.0f, float beta = 0.0f, MathPrecision precision = MathPrecision::F32,
          const Tensor& bias = Tensor());
void bias_add(Tensor& y, const Tensor& bias);
void sum_rows(const Tensor& dy, Tensor& out, bool accumulate);

}  // namespace kiln::ops
