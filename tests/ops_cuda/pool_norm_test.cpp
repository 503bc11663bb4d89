// Pooling and normalisation CUDA twins against the CPU's. Pooling adds in the
// CPU's order: bit for bit. The norms reduce in double in another order: 1e-5
// relative.
#include "ops/norm.h"
#include "ops/pool.h"
#include "ops_cuda/cuda_twin.h"

namespace kiln::ops::test {
namespace {

class PoolCuda : public CudaTwin {};
class NormCuda : public CudaTwin {};

Pool2dGeometry pool(std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  Pool2dGeometry g;
  g.batch = 3;
  g.channels = 5;
  g.height = 13;
  g.width = 11;
  g.kernel = kernel;
  g.stride = stride;
  g.padding = padding;
  return g;
}

// 2x2 stride 2 (the CNN's), and overlapping padded windows, where an input feeds
// several outputs.
const Pool2dGeometry kPools[] = {pool(2, 2, 0), pool(3, 2, 1), pool(3, 1, 1)};

TEST_F(PoolCuda, MaxPoolForwardAndBackward) {
  for (const Pool2dGeometry& g : kPools) {
    const Tensor x = random_tensor(g.input_shape(), 1), dy = random_tensor(g.output_shape(), 2);
    Tensor y_cpu = Tensor::empty(g.output_shape()), y_gpu = poisoned(g.output_shape());
    Tensor at_cpu = Tensor::empty(g.output_shape(), DType::I32);
    Tensor at_gpu = poisoned(g.output_shape(), DType::I32);
    max_pool2d_forward(g, x, y_cpu, at_cpu);
    max_pool2d_forward(g, x.to(gpu()), y_gpu, at_gpu);
    expect_equal(y_gpu, y_cpu, "max_pool2d");
    expect_equal(at_gpu, at_cpu, "max_pool2d argmax");
    Tensor dx_cpu = Tensor::empty(g.input_shape()), dx_gpu = poisoned(g.input_shape());
    max_pool2d_backward(g, dy, at_cpu, dx_cpu);
    max_pool2d_backward(g, dy.to(gpu()), at_gpu, dx_gpu);
    expect_equal(dx_gpu, dx_cpu, "max_pool2d backward");
  }
}

TEST_F(PoolCuda, AvgPoolForwardAndBackward) {
  for (const Pool2dGeometry& g : kPools) {
    const Tensor x = random_tensor(g.input_shape(), 3), dy = random_tensor(g.output_shape(), 4);
    Tensor y_cpu = Tensor::empty(g.output_shape()), y_gpu = poisoned(g.output_shape());
    avg_pool2d_forward(g, x, y_cpu);
    avg_pool2d_forward(g, x.to(gpu()), y_gpu);
    expect_equal(y_gpu, y_cpu, "avg_pool2d");
    Tensor dx_cpu = Tensor::empty(g.input_shape()), dx_gpu = poisoned(g.input_shape());
    avg_pool2d_backward(g, dy, dx_cpu);
    avg_pool2d_backward(g, dy.to(gpu()), dx_gpu);
    expect_equal(dx_gpu, dx_cpu, "avg_pool2d backward");
  }
}

TEST_F(PoolCuda, GlobalAvgPoolForwardAndBackward) {
  const Tensor x = random_tensor({6, 7, 5, 9}, 5), dy = random_tensor({6, 7}, 6);
  Tensor y_cpu = Tensor::empty({6, 7}), y_gpu = poisoned({6, 7});
  global_avg_pool_forward(x, y_cpu);
  global_avg_pool_forward(x.to(gpu()), y_gpu);
  expect_equal(y_gpu, y_cpu, "global_avg_pool");
  Tensor dx_cpu = Tensor::empty(x.shape()), dx_gpu = poisoned(x.shape());
  global_avg_pool_backward(dy, dx_cpu);
  global_avg_pool_backward(dy.to(gpu()), dx_gpu);
  expect_equal(dx_gpu, dx_cpu, "global_avg_pool backward");
}

struct BatchNormTensors {
  Tensor gamma, beta, running_mean, running_var;
  BatchNormState saved;
};

BatchNormTensors batch_norm_tensors(std::int64_t channels, Device device, bool poison_saved) {
  BatchNormTensors t{random_tensor({channels}, 7, 0.5f, 1.5f),
                     random_tensor({channels}, 8),
                     random_tensor({channels}, 9),
                     random_tensor({channels}, 10, 0.5f, 2.0f),
                     {Tensor::empty({channels}), Tensor::empty({channels})}};
  if (device.is_cpu()) return t;
  return {t.gamma.to(device),
          t.beta.to(device),
          t.running_mean.to(device),
          t.running_var.to(device),
          {poison_saved ? poisoned({channels}) : t.saved.mean.to(device),
           poison_saved ? poisoned({channels}) : t.saved.inv_std.to(device)}};
}

TEST_F(NormCuda, BatchNormTrainEvalAndBackward) {
  const Shape shape{16, 6, 9, 7};
  // Inputs off zero, so that the mean matters.
  const Tensor x = random_tensor(shape, 11, 1.0f, 3.0f), dy = random_tensor(shape, 12);
  BatchNormTensors c = batch_norm_tensors(6, Device::cpu(), false);
  BatchNormTensors g = batch_norm_tensors(6, gpu(), true);
  Tensor y_cpu = Tensor::empty(shape), y_gpu = poisoned(shape);
  const Tensor x_gpu = x.to(gpu());
  batch_norm2d_forward_train(x, c.gamma, c.beta, 1e-5f, 0.1f, c.running_mean, c.running_var, y_cpu,
                             c.saved);
  batch_norm2d_forward_train(x_gpu, g.gamma, g.beta, 1e-5f, 0.1f, g.running_mean, g.running_var,
                             y_gpu, g.saved);
  expect_close(y_gpu, y_cpu, 1e-5, "batch_norm2d train");
  expect_close(g.saved.mean, c.saved.mean, 1e-5, "batch_norm2d saved mean");
  expect_close(g.saved.inv_std, c.saved.inv_std, 1e-5, "batch_norm2d saved 1/std");
  expect_close(g.running_mean, c.running_mean, 1e-5, "batch_norm2d running mean");
  expect_close(g.running_var, c.running_var, 1e-5, "batch_norm2d running variance");

  Tensor e_cpu = Tensor::empty(shape), e_gpu = poisoned(shape);
  batch_norm2d_forward_eval(x, c.gamma, c.beta, 1e-5f, c.running_mean, c.running_var, e_cpu);
  batch_norm2d_forward_eval(x_gpu, g.gamma, g.beta, 1e-5f, g.running_mean, g.running_var, e_gpu);
  expect_close(e_gpu, e_cpu, 1e-5, "batch_norm2d eval");

  const Tensor dgamma0 = random_tensor({6}, 13), dbeta0 = random_tensor({6}, 14);
  Tensor dx_cpu = Tensor::empty(shape), dx_gpu = poisoned(shape);
  Tensor dgamma_cpu = dgamma0.clone(), dbeta_cpu = dbeta0.clone();
  Tensor dgamma_gpu = dgamma0.to(gpu()), dbeta_gpu = dbeta0.to(gpu());
  batch_norm2d_backward(x, c.gamma, c.saved, dy, dx_cpu, dgamma_cpu, dbeta_cpu);
  batch_norm2d_backward(x_gpu, g.gamma, g.saved, dy.to(gpu()), dx_gpu, dgamma_gpu, dbeta_gpu);
  expect_close(dx_gpu, dx_cpu, 1e-5, "batch_norm2d dx");
  expect_close(dgamma_gpu, dgamma_cpu, 1e-5, "batch_norm2d dgamma");
  expect_close(dbeta_gpu, dbeta_cpu, 1e-5, "batch_norm2d dbeta");
}

TEST_F(NormCuda, LayerNormForwardAndBackward) {
  for (const std::int64_t features : {std::int64_t{10}, std::int64_t{1000}}) {
    const Shape shape{37, features};
    const Tensor x = random_tensor(shape, 15, -2.0f, 3.0f), dy = random_tensor(shape, 16);
    const Tensor gamma = random_tensor({features}, 17, 0.5f, 1.5f);
    const Tensor beta = random_tensor({features}, 18);
    Tensor y_cpu = Tensor::empty(shape), y_gpu = poisoned(shape);
    Tensor mean_cpu = Tensor::empty({37}), mean_gpu = poisoned({37});
    Tensor rstd_cpu = Tensor::empty({37}), rstd_gpu = poisoned({37});
    const Tensor x_gpu = x.to(gpu()), gamma_gpu = gamma.to(gpu());
    layer_norm_forward(x, gamma, beta, 1e-5f, y_cpu, mean_cpu, rstd_cpu);
    layer_norm_forward(x_gpu, gamma_gpu, beta.to(gpu()), 1e-5f, y_gpu, mean_gpu, rstd_gpu);
    expect_close(y_gpu, y_cpu, 1e-5, "layer_norm");
    expect_close(mean_gpu, mean_cpu, 1e-5, "layer_norm mean");
    expect_close(rstd_gpu, rstd_cpu, 1e-5, "layer_norm 1/std");

    const Tensor dgamma0 = random_tensor({features}, 19), dbeta0 = random_tensor({features}, 20);
    Tensor dx_cpu = Tensor::empty(shape), dx_gpu = poisoned(shape);
    Tensor dgamma_cpu = dgamma0.clone(), dbeta_cpu = dbeta0.clone();
    Tensor dgamma_gpu = dgamma0.to(gpu()), dbeta_gpu = dbeta0.to(gpu());
    layer_norm_backward(x, gamma, mean_cpu, rstd_cpu, dy, dx_cpu, dgamma_cpu, dbeta_cpu);
    layer_norm_backward(x_gpu, gamma_gpu, mean_gpu, rstd_gpu, dy.to(gpu()), dx_gpu, dgamma_gpu,
                        dbeta_gpu);
    expect_close(dx_gpu, dx_cpu, 1e-5, "layer_norm dx");
    expect_close(dgamma_gpu, dgamma_cpu, 1e-5, "layer_norm dgamma");
    expect_close(dbeta_gpu, dbeta_cpu, 1e-5, "layer_norm dbeta");
  }
}

}  // namespace
}  // namespace kiln::ops::test
