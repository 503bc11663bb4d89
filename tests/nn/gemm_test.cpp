// The CPU matrix product (oneDNN's matmul) against a double-precision product
// written here: every transpose, alpha, beta and bias combination in float32, and
// bf16 (factors rounded to bf16, float32 accumulation) where the CPU has the
// instructions. Convolution in bf16 likewise, forward and weight gradient.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "nn/gradient_checker.h"
#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/precision.h"

namespace kiln::ops {
namespace {

// float32 -> bf16 -> float32, rounding to nearest even (what oneDNN's reorder does).
float round_bf16(float value) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return std::bit_cast<float>(bits & 0xFFFF0000u);
}

std::vector<float> rounded(const std::vector<float>& values) {
  std::vector<float> out;
  for (float v : values) out.push_back(round_bf16(v));
  return out;
}

// x[i, j] of a row-major [rows, columns] matrix, read as op(x).
double at(const std::vector<float>& x, std::int64_t columns, bool transpose, std::int64_t i,
          std::int64_t j) {
  return transpose ? x[static_cast<std::size_t>(j * columns + i)]
                   : x[static_cast<std::size_t>(i * columns + j)];
}

struct Case {
  std::int64_t m, n, k;
  bool transpose_a, transpose_b;
  float alpha, beta;
  bool bias;
};

// alpha op(a) op(b) + beta c + bias in double, and the bound sum_k |alpha a b| per
// element that float32 accumulation error is proportional to.
struct Reference {
  std::vector<double> value, magnitude;
};

Reference reference(const Case& c, const std::vector<float>& a, const std::vector<float>& b,
                    const std::vector<float>& c0, const std::vector<float>& bias) {
  Reference r{std::vector<double>(static_cast<std::size_t>(c.m * c.n)),
              std::vector<double>(static_cast<std::size_t>(c.m * c.n))};
  const std::int64_t a_columns = c.transpose_a ? c.m : c.k;
  const std::int64_t b_columns = c.transpose_b ? c.k : c.n;
  for (std::int64_t i = 0; i < c.m; ++i)
    for (std::int64_t j = 0; j < c.n; ++j) {
      double sum = 0, magnitude = 0;
      for (std::int64_t p = 0; p < c.k; ++p) {
        const double product =
            at(a, a_columns, c.transpose_a, i, p) * at(b, b_columns, c.transpose_b, p, j);
        sum += product;
        magnitude += std::abs(product);
      }
      const auto e = static_cast<std::size_t>(i * c.n + j);
      r.value[e] =
          c.alpha * sum + c.beta * c0[e] + (c.bias ? bias[static_cast<std::size_t>(j)] : 0);
      r.magnitude[e] = std::abs(c.alpha) * magnitude + std::abs(c.beta * c0[e]) + 1;
    }
  return r;
}

std::vector<float> run(const Case& c, const std::vector<float>& a, const std::vector<float>& b,
                       const std::vector<float>& c0, const std::vector<float>& bias,
                       MathPrecision precision) {
  const Tensor ta = Tensor::from(a, c.transpose_a ? Shape{c.k, c.m} : Shape{c.m, c.k});
  const Tensor tb = Tensor::from(b, c.transpose_b ? Shape{c.n, c.k} : Shape{c.k, c.n});
  Tensor out = Tensor::from(c0, {c.m, c.n});
  gemm(ta, c.transpose_a, tb, c.transpose_b, out, c.alpha, c.beta, precision,
       c.bias ? Tensor::from(bias, {c.n}) : Tensor());
  return out.to_vector();
}

std::vector<float> values(std::int64_t count, std::uint64_t seed) {
  return test::random_tensor({count}, seed).to_vector();
}

// float32 accumulation of k terms: error below k * 2^-24 * sum |terms|, with room.
constexpr double kFloatTolerance = 1e-6;

TEST(CpuGemm, MatchesADoubleProductForEveryTransposeScaleAndBias) {
  int checked = 0;
  for (bool transpose_a : {false, true})
    for (bool transpose_b : {false, true})
      for (float alpha : {1.0f, 0.5f})
        for (float beta : {0.0f, 1.0f, -0.25f})
          for (bool bias : {false, true}) {
            const Case c{37, 29, 53, transpose_a, transpose_b, alpha, beta, bias};
            const auto a = values(c.m * c.k, 1), b = values(c.k * c.n, 2),
                       c0 = values(c.m * c.n, 3), bias_values = values(c.n, 4);
            const std::vector<float> got = run(c, a, b, c0, bias_values, MathPrecision::F32);
            const Reference want = reference(c, a, b, c0, bias_values);
            for (std::size_t e = 0; e < got.size(); ++e)
              ASSERT_NEAR(got[e], want.value[e], kFloatTolerance * c.k * want.magnitude[e])
                  << "element " << e << " transpose_a " << transpose_a << " transpose_b "
                  << transpose_b << " alpha " << alpha << " beta " << beta << " bias " << bias;
            ++checked;
          }
  EXPECT_EQ(checked, 48);
}

TEST(CpuGemm, Bf16RoundsTheFactorsAndAccumulatesInFloat32) {
  if (!cpu_has_bf16())
    GTEST_SKIP() << "this CPU lacks CPU bf16 instructions (oneDNN runs " << cpu_isa_name() << ")";
  for (bool transpose_a : {false, true})
    for (bool transpose_b : {false, true}) {
      const Case c{64, 48, 300, transpose_a, transpose_b, 1.0f, 1.0f, true};
      const auto a = values(c.m * c.k, 5), b = values(c.k * c.n, 6), c0 = values(c.m * c.n, 7),
                 bias = values(c.n, 8);
      const std::vector<float> got = run(c, a, b, c0, bias, MathPrecision::BF16);
      const Reference want = reference(c, rounded(a), rounded(b), c0, bias);
      const Reference unrounded = reference(c, a, b, c0, bias);
      double furthest_from_float32 = 0;
      for (std::size_t e = 0; e < got.size(); ++e) {
        ASSERT_NEAR(got[e], want.value[e], kFloatTolerance * c.k * want.magnitude[e])
            << "element " << e;
        furthest_from_float32 =
            std::max(furthest_from_float32, std::abs(got[e] - unrounded.value[e]));
      }
      // bf16 keeps 8 bits: rounding 300 factors moves some element by far more than
      // float32 accumulation would.
      EXPECT_GT(furthest_from_float32, 1e-3) << "the factors were not rounded to bf16";
    }
}

// A direct convolution in double over the given (already rounded) input and weights.
std::vector<double> convolve(const Conv2dGeometry& g, const std::vector<float>& x,
                             const std::vector<float>& w) {
  const std::int64_t oh = g.output_shape()[2], ow = g.output_shape()[3];
  std::vector<double> y(static_cast<std::size_t>(g.batch * g.out_channels * oh * ow));
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t o = 0; o < g.out_channels; ++o)
      for (std::int64_t i = 0; i < oh; ++i)
        for (std::int64_t j = 0; j < ow; ++j) {
          double sum = 0;
          for (std::int64_t c = 0; c < g.in_channels; ++c)
            for (std::int64_t u = 0; u < g.kernel; ++u)
              for (std::int64_t v = 0; v < g.kernel; ++v) {
                const std::int64_t r = i * g.stride + u - g.padding,
                                   s = j * g.stride + v - g.padding;
                if (r < 0 || s < 0 || r >= g.height || s >= g.width) continue;
                sum += static_cast<double>(x[static_cast<std::size_t>(
                           ((n * g.in_channels + c) * g.height + r) * g.width + s)]) *
                       w[static_cast<std::size_t>(
                           ((o * g.in_channels + c) * g.kernel + u) * g.kernel + v)];
              }
          y[static_cast<std::size_t>(((n * g.out_channels + o) * oh + i) * ow + j)] = sum;
        }
  return y;
}

TEST(CpuConv2d, Bf16ForwardAndWeightGradientUseRoundedFactors) {
  if (!cpu_has_bf16())
    GTEST_SKIP() << "this CPU lacks CPU bf16 instructions (oneDNN runs " << cpu_isa_name() << ")";
  const Conv2dGeometry g{.batch = 4,
                         .in_channels = 16,
                         .height = 9,
                         .width = 9,
                         .out_channels = 32,
                         .kernel = 3,
                         .stride = 1,
                         .padding = 1};
  const auto x = values(shape_elements(g.input_shape()), 9);
  const auto w = values(shape_elements(g.weight_shape()), 10);
  const auto dy = values(shape_elements(g.output_shape()), 11);
  const Tensor tx = Tensor::from(x, g.input_shape()), tw = Tensor::from(w, g.weight_shape());
  Tensor y = Tensor::empty(g.output_shape());
  conv2d_forward(g, tx, tw, Tensor(), y, MathPrecision::BF16);
  const std::vector<double> want = convolve(g, rounded(x), rounded(w));
  const std::vector<float> got = y.to_vector();
  // 144 terms of magnitude below 1 each.
  for (std::size_t e = 0; e < got.size(); ++e) ASSERT_NEAR(got[e], want[e], 1e-4) << e;

  // dw[o, c, u, v] = sum over n, i, j of x_bf16 * dy_bf16: the same direct sum with
  // the roles swapped, checked at a few weights against a double loop.
  Tensor dw = Tensor::zeros(g.weight_shape()), dx;
  Tensor db;
  conv2d_backward(g, tx, tw, Tensor::from(dy, g.output_shape()), dx, dw, db, MathPrecision::BF16);
  const auto xr = rounded(x), dyr = rounded(dy);
  const std::vector<float> got_dw = dw.to_vector();
  double furthest_from_float32 = 0;
  for (std::int64_t o : {0, 17, 31})
    for (std::int64_t c : {0, 9, 15})
      for (std::int64_t u = 0; u < 3; ++u)
        for (std::int64_t v = 0; v < 3; ++v) {
          double sum = 0, unrounded = 0;
          for (std::int64_t n = 0; n < g.batch; ++n)
            for (std::int64_t i = 0; i < g.height; ++i)
              for (std::int64_t j = 0; j < g.width; ++j) {
                const std::int64_t r = i + u - 1, s = j + v - 1;
                if (r < 0 || s < 0 || r >= g.height || s >= g.width) continue;
                const auto xi = static_cast<std::size_t>(
                    ((n * g.in_channels + c) * g.height + r) * g.width + s);
                const auto yi = static_cast<std::size_t>(
                    ((n * g.out_channels + o) * g.height + i) * g.width + j);
                sum += static_cast<double>(xr[xi]) * dyr[yi];
                unrounded += static_cast<double>(x[xi]) * dy[yi];
              }
          const float value =
              got_dw[static_cast<std::size_t>(((o * g.in_channels + c) * 3 + u) * 3 + v)];
          ASSERT_NEAR(value, sum, 1e-4) << "dw[" << o << ", " << c << ", " << u << ", " << v << "]";
          furthest_from_float32 = std::max(furthest_from_float32, std::abs(value - unrounded));
        }
  EXPECT_GT(furthest_from_float32, 1e-3) << "the factors were not rounded to bf16";
}

}  // namespace
}  // namespace kiln::ops
