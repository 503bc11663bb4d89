#include "ops/gemm.h"

#include <cblas.h>
#include <fmt/format.h>

namespace kiln::ops {
namespace {

struct MatrixShape {
  std::int64_t rows, columns;
};

MatrixShape matrix(const Tensor& tensor, bool transpose, const char* what) {
  if (tensor.rank() != 2 || tensor.dtype() != DType::F32)
    throw InternalError(fmt::format("gemm: {} must be a 2-D float32 tensor, has shape {}", what,
                                    shape_string(tensor.shape())));
  return transpose ? MatrixShape{tensor.dim(1), tensor.dim(0)}
                   : MatrixShape{tensor.dim(0), tensor.dim(1)};
}

}  // namespace

template <>
void BiasAdd<DeviceType::CPU>::run(Tensor& y, const Tensor& bias) {
  const std::int64_t features = bias.numel();
  const std::int64_t rows = y.numel() / features;
  float* out = y.data<float>();
  const float* b = bias.data<float>();
  for (std::int64_t n = 0; n < rows; ++n)
    for (std::int64_t f = 0; f < features; ++f) out[n * features + f] += b[f];
}

template <>
void Gemm<DeviceType::CPU>::run(const Tensor& a, bool transpose_a, const Tensor& b,
                                bool transpose_b, Tensor& c, float alpha, float beta,
                                const Tensor& bias, MathPrecision) {
  const auto [m, k] = matrix(a, transpose_a, "a");
  const auto [k2, n] = matrix(b, transpose_b, "b");
  if (k != k2) throw InternalError(fmt::format("gemm: inner dimensions {} and {} differ", k, k2));
  check_shape("gemm", "c", c, {m, n});
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
              transpose_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a.data<float>(), static_cast<int>(a.dim(1)),
              b.data<float>(), static_cast<int>(b.dim(1)), beta, c.data<float>(),
              static_cast<int>(n));
  if (bias.defined()) BiasAdd<DeviceType::CPU>::run(c, bias);
}

template <>
void SumRows<DeviceType::CPU>::run(const Tensor& dy, Tensor& out, bool accumulate) {
  const std::int64_t features = out.numel();
  const std::int64_t rows = dy.numel() / features;
  const float* in = dy.data<float>();
  float* sum = out.data<float>();
  if (!accumulate) out.zero();
  for (std::int64_t n = 0; n < rows; ++n)
    for (std::int64_t f = 0; f < features; ++f) sum[f] += in[n * features + f];
}

void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c,
          float alpha, float beta, MathPrecision precision, const Tensor& bias) {
  check_same_device("gemm", {&a, &b, &c});
  const auto [m, k] = matrix(a, transpose_a, "a");
  const auto [k2, n] = matrix(b, transpose_b, "b");
  if (k != k2) throw InternalError(fmt::format("gemm: inner dimensions {} and {} differ", k, k2));
  check_shape("gemm", "c", c, {m, n});
  if (bias.defined()) {
    check_same_device("gemm", {&bias, &c});
    if (c.rank() != 2 || bias.numel() != c.dim(1))
      throw InternalError(fmt::format("gemm: bias of {} elements for a product of shape {}",
                                      bias.numel(), shape_string(c.shape())));
  }
  dispatch<Gemm>(c.device(), "gemm", [&](auto op) {
    op.run(a, transpose_a, b, transpose_b, c, alpha, beta, bias, precision);
  });
}

void bias_add(Tensor& y, const Tensor& bias) {
  check_same_device("bias_add", {&y, &bias});
  dispatch<BiasAdd>(y.device(), "bias_add", [&](auto op) { op.run(y, bias); });
}

void sum_rows(const Tensor& dy, Tensor& out, bool accumulate) {
  check_same_device("sum_rows", {&dy, &out});
  dispatch<SumRows>(dy.device(), "sum_rows", [&](auto op) { op.run(dy, out, accumulate); });
}

}  // namespace kiln::ops
