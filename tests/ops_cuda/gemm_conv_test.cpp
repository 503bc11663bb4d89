// The matrix ops' CUDA twins (cuBLASLt GEMM, cuDNN convolution) against the CPU's
// float32 oneDNN. Tolerances: float32 1e-5 relative (GEMM) and 1e-4 (cuDNN may
// pick Winograd or FFT, which round differently from direct summation); bf16
// 1e-2 relative in norm.
#include <string>

#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops_cuda/cuda_twin.h"
#include "tensor/cuda_context.h"

namespace kiln::ops::test {
namespace {

class GemmCuda : public CudaTwin {};
class ConvCuda : public CudaTwin {};

struct GemmCase {
  bool transpose_a, transpose_b;
};

// c = alpha op(a) op(b) + beta c on both devices; beta = 0 runs into a poisoned c.
void check_gemm(GemmCase t, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, float beta,
                MathPrecision precision, bool with_bias) {
  const Tensor a = random_tensor(t.transpose_a ? Shape{k, m} : Shape{m, k}, 1);
  const Tensor b = random_tensor(t.transpose_b ? Shape{n, k} : Shape{k, n}, 2);
  const Tensor bias = with_bias ? random_tensor({n}, 3) : Tensor();
  Tensor c_cpu = random_tensor({m, n}, 4);
  Tensor c_gpu = beta == 0.0f ? poisoned({m, n}) : c_cpu.to(gpu());
  gemm(a, t.transpose_a, b, t.transpose_b, c_cpu, alpha, beta, MathPrecision::F32, bias);
  gemm(a.to(gpu()), t.transpose_a, b.to(gpu()), t.transpose_b, c_gpu, alpha, beta, precision,
       with_bias ? bias.to(gpu()) : Tensor());
  const std::string what = "gemm ta=" + std::to_string(t.transpose_a) +
                           " tb=" + std::to_string(t.transpose_b) + " beta=" + std::to_string(beta);
  if (precision == MathPrecision::BF16)
    expect_close_in_norm(c_gpu, c_cpu, 1e-2, what + " bf16");
  else
    expect_close(c_gpu, c_cpu, 1e-5, what);
}

TEST_F(GemmCuda, AllTransposesMatchTheCpu) {
  for (const GemmCase t : {GemmCase{false, false}, {false, true}, {true, false}, {true, true}}) {
    check_gemm(t, 37, 53, 129, 1.0f, 0.0f, MathPrecision::F32, false);
    check_gemm(t, 37, 53, 129, 0.5f, 0.75f, MathPrecision::F32, false);
  }
}

TEST_F(GemmCuda, BiasEpilogueMatchesGemmThenBiasAdd) {
  check_gemm({false, true}, 128, 256, 784, 1.0f, 0.0f, MathPrecision::F32, true);
  check_gemm({false, true}, 5, 10, 3, 1.0f, 0.0f, MathPrecision::F32, true);
}

TEST_F(GemmCuda, Bf16AutocastStaysWithinBf16Rounding) {
  check_gemm({false, true}, 128, 256, 784, 1.0f, 0.0f, MathPrecision::BF16, true);
  check_gemm({true, false}, 64, 96, 128, 1.0f, 1.0f, MathPrecision::BF16, false);
}

// Row views start at offsets the allocator's alignment does not promise; the plan
// must be chosen for the actual alignment.
TEST_F(GemmCuda, UnalignedRowViews) {
  const Tensor a = random_tensor({41, 33}, 5), b = random_tensor({33, 17}, 6);
  Tensor c_cpu = Tensor::empty({40, 17});
  const Tensor a_view = a.rows(1, 41);
  gemm(a_view, false, b, false, c_cpu);
  const Tensor a_gpu = a.to(gpu());
  Tensor c_gpu_all = poisoned({41, 17});
  Tensor c_gpu = c_gpu_all.rows(1, 41);
  gemm(a_gpu.rows(1, 41), false, b.to(gpu()), false, c_gpu);
  expect_close(c_gpu, c_cpu, 1e-5, "gemm on row views");
}

TEST_F(GemmCuda, BiasAddAndSumRows) {
  const Tensor y = random_tensor({70, 45}, 7), bias = random_tensor({45}, 8);
  Tensor y_cpu = y.clone(), y_gpu = y.to(gpu());
  bias_add(y_cpu, bias);
  bias_add(y_gpu, bias.to(gpu()));
  expect_equal(y_gpu, y_cpu, "bias_add");

  const Tensor dy = random_tensor({300, 45}, 9);
  Tensor sum_cpu = Tensor::empty({45}), sum_gpu = poisoned({45});
  sum_rows(dy, sum_cpu, false);
  sum_rows(dy.to(gpu()), sum_gpu, false);
  expect_close(sum_gpu, sum_cpu, 1e-5, "sum_rows");
  sum_rows(dy, sum_cpu, true);
  sum_rows(dy.to(gpu()), sum_gpu, true);
  expect_close(sum_gpu, sum_cpu, 1e-5, "sum_rows accumulating");
}

// Forward and backward on both devices; gradients accumulate into the same random
// starting values on both sides.
void check_conv(const Conv2dGeometry& g, bool with_bias, MathPrecision precision) {
  const Tensor x = random_tensor(g.input_shape(), 11), w = random_tensor(g.weight_shape(), 12);
  const Tensor bias = with_bias ? random_tensor({g.out_channels}, 13) : Tensor();
  Tensor y_cpu = Tensor::empty(g.output_shape()), y_gpu = poisoned(g.output_shape());
  conv2d_forward(g, x, w, bias, y_cpu);
  const Tensor x_gpu = x.to(gpu()), w_gpu = w.to(gpu());
  conv2d_forward(g, x_gpu, w_gpu, with_bias ? bias.to(gpu()) : Tensor(), y_gpu, precision);

  const Tensor dy = random_tensor(g.output_shape(), 14);
  const Tensor dw0 = random_tensor(g.weight_shape(), 15), db0 = random_tensor({g.out_channels}, 16);
  Tensor dx_cpu = Tensor::empty(g.input_shape()), dx_gpu = poisoned(g.input_shape());
  Tensor dw_cpu = dw0.clone(), dw_gpu = dw0.to(gpu());
  Tensor db_cpu = with_bias ? db0.clone() : Tensor(), db_gpu = with_bias ? db0.to(gpu()) : Tensor();
  conv2d_backward(g, x, w, dy, dx_cpu, dw_cpu, db_cpu);
  conv2d_backward(g, x_gpu, w_gpu, dy.to(gpu()), dx_gpu, dw_gpu, db_gpu, precision);

  const std::string what = "conv " + std::to_string(g.in_channels) + "->" +
                           std::to_string(g.out_channels) + " k" + std::to_string(g.kernel) + " s" +
                           std::to_string(g.stride) + " p" + std::to_string(g.padding);
  if (precision == MathPrecision::BF16) {
    expect_close_in_norm(y_gpu, y_cpu, 1e-2, what + " y bf16");
    expect_close_in_norm(dx_gpu, dx_cpu, 1e-2, what + " dx bf16");
    // dw accumulates onto dw0; compare the increments.
    Tensor increment_cpu = dw_cpu.clone(), increment_gpu = dw_gpu.to(Device::cpu());
    const std::vector<float> start = dw0.to_vector();
    for (std::int64_t i = 0; i < dw0.numel(); ++i) {
      increment_cpu.data<float>()[i] -= start[static_cast<std::size_t>(i)];
      increment_gpu.data<float>()[i] -= start[static_cast<std::size_t>(i)];
    }
    expect_close_in_norm(increment_gpu, increment_cpu, 1e-2, what + " dw bf16");
  } else {
    expect_close(y_gpu, y_cpu, 1e-4, what + " y");
    expect_close(dx_gpu, dx_cpu, 1e-4, what + " dx");
    expect_close(dw_gpu, dw_cpu, 1e-4, what + " dw");
  }
  if (with_bias) expect_close(db_gpu, db_cpu, 1e-5, what + " db");
}

TEST_F(ConvCuda, ForwardAndBackwardMatchOneDnn) {
  check_conv(Conv2dGeometry::square(8, 3, 28, 16, 3, 1, 1), true, MathPrecision::F32);
  check_conv(Conv2dGeometry::square(4, 16, 14, 32, 3, 2, 1), false, MathPrecision::F32);
  check_conv(Conv2dGeometry::square(2, 5, 9, 7, 2, 2, 0), true, MathPrecision::F32);
  check_conv(Conv2dGeometry::square(3, 8, 6, 4, 1, 1, 0), true, MathPrecision::F32);
}

TEST_F(ConvCuda, Bf16AutocastStaysWithinBf16Rounding) {
  check_conv(Conv2dGeometry::square(16, 32, 14, 64, 3, 1, 1), true, MathPrecision::BF16);
}

// Without an input gradient (the first layer), only the weights' gradient is made.
TEST_F(ConvCuda, BackwardWithoutInputGradient) {
  const Conv2dGeometry g = Conv2dGeometry::square(2, 1, 12, 8, 5, 1, 2);
  const Tensor x = random_tensor(g.input_shape(), 21), w = random_tensor(g.weight_shape(), 22);
  const Tensor dy = random_tensor(g.output_shape(), 23);
  Tensor dx, db, dw_cpu = Tensor::zeros(g.weight_shape()), dw_gpu = dw_cpu.to(gpu());
  conv2d_backward(g, x, w, dy, dx, dw_cpu, db);
  conv2d_backward(g, x.to(gpu()), w.to(gpu()), dy.to(gpu()), dx, dw_gpu, db);
  expect_close(dw_gpu, dw_cpu, 1e-4, "conv dw without dx");
}

// A GEMM-only model must not need cuDNN (a machine where cuDNN cannot load still
// trains an MLP); the first convolution creates the handle. ctest runs each test in
// its own process, so nothing before it here has made one.
TEST_F(ConvCuda, CudnnIsCreatedByTheFirstConvolutionOnly) {
  if (cuda::cudnn_created(gpu()))
    GTEST_SKIP() << "an earlier test in this process made the handle; run this test alone";
  const Tensor a = random_tensor({64, 32}, 1).to(gpu()), b = random_tensor({32, 16}, 2).to(gpu());
  Tensor c = poisoned({64, 16});
  gemm(a, false, b, false, c);
  values_of(c);  // the GEMM ran
  EXPECT_FALSE(cuda::cudnn_created(gpu()));
  const Conv2dGeometry g = Conv2dGeometry::square(2, 3, 8, 4, 3, 1, 1);
  Tensor y = poisoned(g.output_shape());
  conv2d_forward(g, random_tensor(g.input_shape(), 3).to(gpu()),
                 random_tensor(g.weight_shape(), 4).to(gpu()), Tensor(), y);
  values_of(y);
  EXPECT_TRUE(cuda::cudnn_created(gpu()));
}

}  // namespace
}  // namespace kiln::ops::test
