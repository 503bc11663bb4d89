// The elementwise ops' CUDA twins against the CPU's. ReLU, dropout and add round as
// the CPU does: bit for bit. GELU uses CUDA's erff/expf: 1e-5 relative.
#include "ops/activation.h"
#include "ops_cuda/cuda_twin.h"

namespace kiln::ops::test {
namespace {

class ElementwiseCuda : public CudaTwin {};

// 4099 elements: not a multiple of Philox's four words nor of a block.
const Shape kShape{17, 241};

TEST_F(ElementwiseCuda, ReluForwardAndBackward) {
  const Tensor x = random_tensor(kShape, 1), dy = random_tensor(kShape, 2);
  Tensor y_cpu = Tensor::empty(kShape), y_gpu = poisoned(kShape);
  relu_forward(x, y_cpu);
  relu_forward(x.to(gpu()), y_gpu);
  expect_equal(y_gpu, y_cpu, "relu");
  Tensor dx_cpu = Tensor::empty(kShape), dx_gpu = poisoned(kShape);
  relu_backward(y_cpu, dy, dx_cpu);
  relu_backward(y_gpu, dy.to(gpu()), dx_gpu);
  expect_equal(dx_gpu, dx_cpu, "relu backward");
}

TEST_F(ElementwiseCuda, GeluForwardAndBackward) {
  const Tensor x = random_tensor(kShape, 3, -4.0f, 4.0f), dy = random_tensor(kShape, 4);
  Tensor y_cpu = Tensor::empty(kShape), y_gpu = poisoned(kShape);
  gelu_forward(x, y_cpu);
  gelu_forward(x.to(gpu()), y_gpu);
  expect_close(y_gpu, y_cpu, 1e-5, "gelu");
  Tensor dx_cpu = Tensor::empty(kShape), dx_gpu = poisoned(kShape);
  gelu_backward(x, dy, dx_cpu);
  gelu_backward(x.to(gpu()), dy.to(gpu()), dx_gpu);
  expect_close(dx_gpu, dx_cpu, 1e-5, "gelu backward");
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
