// CPU matrix products through oneDNN's matmul. It picks its kernels by the
// instructions the CPU reports (AVX-512, AMX), where Debian's OpenBLAS 0.3.21 picks
// them by CPU model and fell back to its SSE3 kernels on a Xeon it did not know
// (benchmarks/RESULTS.md). Primitives are built once per shape and thread and
// kept. In bf16 the two factors are rounded into bf16 copies of the same layout
// first (oneDNN's blocked choice measured 10% slower for the MLP, its reorders
// costing more than they gave); the product accumulates and lands in float32.
#include "ops/gemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <map>
#include <tuple>
#include <unordered_map>

#include "ops/onednn.h"
#include "ops/parallel.h"

namespace kiln::ops {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

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

// One product's shape and arithmetic; alpha and beta by their bits.
struct GemmShape {
  std::int64_t m, n, k;
  bool transpose_a, transpose_b, bias, bf16;
  float alpha, beta;

  auto key() const {
    return std::make_tuple(m, n, k, transpose_a, transpose_b, bias, bf16,
                           std::bit_cast<std::uint32_t>(alpha), std::bit_cast<std::uint32_t>(beta));
  }
  // op(x) as oneDNN sees the row-major tensor x: a transposed factor is the
  // same bytes read column-major.
  static Tag layout(bool transpose) { return transpose ? Tag::ba : Tag::ab; }
};

struct GemmPrimitive {
  dnnl::matmul matmul;
  memory::desc a, b;  // what it reads: the tensors themselves in float32, or bf16 copies
  onednn::Staged staged_a, staged_b;
  // The memory objects over the caller's tensors and the argument map, made on the
  // first call and pointed at each call's tensors: making them anew cost about
  // 4 us a call, a third of the MLP's last layer's products.
  memory user_a, user_b, user_c, user_bias;
  std::unordered_map<int, memory> args;
};

GemmPrimitive build(const GemmShape& s) {
  dnnl::primitive_attr attr;
  if (s.alpha != 1.0f) attr.set_output_scales(0, {s.alpha});
  if (s.beta != 0.0f) {
    dnnl::post_ops sum;
    sum.append_sum(s.beta);
    attr.set_post_ops(sum);
  }
  const auto f32 = memory::data_type::f32;
  const auto factors = s.bf16 ? memory::data_type::bf16 : f32;
  const memory::desc a({s.m, s.k}, factors, GemmShape::layout(s.transpose_a));
  const memory::desc b({s.k, s.n}, factors, GemmShape::layout(s.transpose_b));
  const memory::desc bias = s.bias ? memory::desc({1, s.n}, f32, Tag::ab) : memory::desc();
  const memory::desc c({s.m, s.n}, f32, Tag::ab);
  const dnnl::matmul::primitive_desc pd({a, b, bias, c}, attr, onednn::engine());
  GemmPrimitive p;
  p.matmul = dnnl::matmul(pd);
  p.a = pd.src_desc();
  p.b = pd.weights_desc();
  const auto plain = [](const memory::dims& dims, Tag tag) {
    return memory({dims, f32, tag}, onednn::engine(), DNNL_MEMORY_NONE);
  };
  p.user_a = plain({s.m, s.k}, GemmShape::layout(s.transpose_a));
  p.user_b = plain({s.k, s.n}, GemmShape::layout(s.transpose_b));
  p.user_c = plain({s.m, s.n}, Tag::ab);
  if (s.bias) p.user_bias = plain({1, s.n}, Tag::ab);
  return p;
}

// Per thread: a primitive's memory objects and staging buffers serve one call at
// a time.
GemmPrimitive& primitive(const GemmShape& shape) {
  thread_local std::map<decltype(shape.key()), GemmPrimitive> cache;
  auto it = cache.find(shape.key());
  if (it == cache.end()) it = cache.emplace(shape.key(), build(shape)).first;
  return it->second;
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
                                const Tensor& bias, MathPrecision precision) {
  const auto [m, k] = matrix(a, transpose_a, "a");
  const auto [k2, n] = matrix(b, transpose_b, "b");
  if (k != k2) throw InternalError(fmt::format("gemm: inner dimensions {} and {} differ", k, k2));
  check_shape("gemm", "c", c, {m, n});
  // oneDNN 2 applies an output scale after the bias, so a scaled product adds
  // its bias here instead.
  const bool fused_bias = bias.defined() && alpha == 1.0f;
  const GemmShape shape{m,
                        n,
                        k,
                        transpose_a,
                        transpose_b,
                        fused_bias,
                        cpu_math(precision) == MathPrecision::BF16,
                        alpha,
                        beta};
  GemmPrimitive& p = primitive(shape);
  p.user_a.set_data_handle(const_cast<void*>(a.raw()));
  p.user_b.set_data_handle(const_cast<void*>(b.raw()));
  p.user_c.set_data_handle(c.raw());
  if (fused_bias) p.user_bias.set_data_handle(const_cast<void*>(bias.raw()));
  // The staged inputs are the same memory objects every call (the tensors' own, or
  // the staging buffers), so the argument map is made once.
  memory& src = p.staged_a.input(p.user_a, p.a);
  memory& weights = p.staged_b.input(p.user_b, p.b);
  if (p.args.empty()) {
    p.args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, p.user_c}};
    if (fused_bias) p.args[DNNL_ARG_BIAS] = p.user_bias;
  }
  p.matmul.execute(onednn::stream(), p.args);
  onednn::stream().wait();
  if (bias.defined() && !fused_bias) BiasAdd<DeviceType::CPU>::run(c, bias);
}

template <>
void SumRows<DeviceType::CPU>::run(const Tensor& dy, Tensor& out, bool accumulate) {
  const std::int64_t features = out.numel();
  const std::int64_t rows = dy.numel() / features;
  const float* in = dy.data<float>();
  float* sum = out.data<float>();
  if (!accumulate) out.zero();
  // Each column sums its rows in order, so columns split over the threads
  // without changing a bit.
  parallel_chunks(features, items_for(rows), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t n = 0; n < rows; ++n)
      for (std::int64_t f = begin; f < end; ++f) sum[f] += in[n * features + f];
  });
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
