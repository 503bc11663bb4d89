// The elementwise ops' CUDA twins against the CPU's. ReLU, LeakyReLU, dropout and add
// round as the CPU does: bit for bit. GELU and SiLU use CUDA's erff/expf: 1e-5
// relative.
#include "ops/activation.h"
#include "ops_cuda/cuda_twin.h"

namespace kiln::ops::test {
namespace {

class ElementwiseCuda : public CudaTwin {};

// 4099 elements: not a multiple of Philox's four words nor of a block.
const Shape kShape{17, 241};

// Forward and backward of activation `f` on both devices; `tolerance` 0 is bit for
// bit. `saved` is what the layer keeps: the output for ReLU, else the input.
template <class F>
void expect_twins(const F& f, float low, float high, double tolerance, const char* name) {
  const Tensor x = random_tensor(kShape, 3, low, high), dy = random_tensor(kShape, 4);
  Tensor y_cpu = Tensor::empty(kShape), y_gpu = poisoned(kShape);
  elementwise_forward(f, x, y_cpu);
  elementwise_forward(f, x.to(gpu()), y_gpu);
  const Tensor saved_cpu = F::kSavesOutput ? y_cpu : x;
  const Tensor saved_gpu = F::kSavesOutput ? y_gpu : x.to(gpu());
  Tensor dx_cpu = Tensor::empty(kShape), dx_gpu = poisoned(kShape);
  elementwise_backward(f, saved_cpu, dy, dx_cpu);
  elementwise_backward(f, saved_gpu, dy.to(gpu()), dx_gpu);
  const std::string backward = std::string(name) + " backward";
  if (tolerance == 0) {
    expect_equal(y_gpu, y_cpu, name);
    expect_equal(dx_gpu, dx_cpu, backward.c_str());
  } else {
    expect_close(y_gpu, y_cpu, tolerance, name);
    expect_close(dx_gpu, dx_cpu, tolerance, backward.c_str());
  }
}

TEST_F(ElementwiseCuda, ReluForwardAndBackward) { expect_twins(Relu{}, -1.0f, 1.0f, 0, "relu"); }

// GELU and SiLU use CUDA's erff/expf: 1e-5 relative.
TEST_F(ElementwiseCuda, GeluForwardAndBackward) { expect_twins(Gelu{}, -4.0f, 4.0f, 1e-5, "gelu"); }

TEST_F(ElementwiseCuda, SiluForwardAndBackward) { expect_twins(Silu{}, -8.0f, 8.0f, 1e-5, "silu"); }

TEST_F(ElementwiseCuda, LeakyReluForwardAndBackward) {
  expect_twins(LeakyRelu{0.2f}, -1.0f, 1.0f, 0, "leaky_relu");
}

// Same (seed, layer, step): the same mask on both devices (Philox addresses).
TEST_F(ElementwiseCuda, DropoutDrawsTheCpuMask) {
  const Tensor x = random_tensor(kShape, 5), dy = random_tensor(kShape, 6);
  for (const DropoutDraw draw : {DropoutDraw{42, 0, 0}, DropoutDraw{0xdeadbeefcafeull, 3, 1234}}) {
    Tensor y_cpu = Tensor::empty(kShape), y_gpu = poisoned(kShape);
    Tensor mask_cpu = Tensor::empty(kShape, DType::U8), mask_gpu = poisoned(kShape, DType::U8);
    dropout_forward(x, 0.3f, draw, y_cpu, mask_cpu);
    dropout_forward(x.to(gpu()), 0.3f, draw, y_gpu, mask_gpu);
    expect_equal(mask_gpu, mask_cpu, "dropout mask");
    expect_equal(y_gpu, y_cpu, "dropout");
    Tensor dx_cpu = Tensor::empty(kShape), dx_gpu = poisoned(kShape);
    dropout_backward(dy, mask_cpu, 0.3f, dx_cpu);
    dropout_backward(dy.to(gpu()), mask_gpu, 0.3f, dx_gpu);
    expect_equal(dx_gpu, dx_cpu, "dropout backward");
  }
}

TEST_F(ElementwiseCuda, AddAlsoInPlace) {
  const Tensor a = random_tensor(kShape, 7), b = random_tensor(kShape, 8);
  Tensor y_cpu = Tensor::empty(kShape), y_gpu = poisoned(kShape);
  add(a, b, y_cpu);
  add(a.to(gpu()), b.to(gpu()), y_gpu);
  expect_equal(y_gpu, y_cpu, "add");
  Tensor a_gpu = a.to(gpu());
  add(a_gpu, b.to(gpu()), a_gpu);
  expect_equal(a_gpu, y_cpu, "add into its input");
}

}  // namespace
}  // namespace kiln::ops::test
