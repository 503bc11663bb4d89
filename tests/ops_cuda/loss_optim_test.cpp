// Losses, optimizer updates and clipping's reductions on CUDA against the CPU.
// Losses reduce in double in another order: 1e-5 relative. The updates round as
// the CPU does (no FMA contraction, IEEE sqrt and division): bit for bit.
#include "ops/loss.h"
#include "ops/optim.h"
#include "ops_cuda/cuda_twin.h"

namespace kiln::ops::test {
namespace {

class LossCuda : public CudaTwin {};
class OptimizerCuda : public CudaTwin {};

TEST_F(LossCuda, SoftmaxCrossEntropyWithSmoothing) {
  for (const std::int64_t classes : {std::int64_t{10}, std::int64_t{100}}) {
    for (const float smoothing : {0.0f, 0.1f}) {
      const Tensor logits = random_tensor({300, classes}, 1, -5.0f, 5.0f);
      const Tensor labels = random_labels(300, static_cast<std::int32_t>(classes), 2);
      // Sums accumulate onto what the tensors hold.
      Tensor loss_cpu = Tensor::full({1}, 1.5f), correct_cpu = Tensor::full({1}, 2.0f);
      Tensor loss_gpu = loss_cpu.to(gpu()), correct_gpu = correct_cpu.to(gpu());
      Tensor d_cpu = Tensor::empty(logits.shape()), d_gpu = poisoned(logits.shape());
      softmax_cross_entropy(logits, labels, smoothing, 1.0f / 300, d_cpu, loss_cpu, correct_cpu);
      softmax_cross_entropy(logits.to(gpu()), labels.to(gpu()), smoothing, 1.0f / 300, d_gpu,
                            loss_gpu, correct_gpu);
      expect_close(d_gpu, d_cpu, 1e-5, "softmax_cross_entropy dlogits");
      expect_close(loss_gpu, loss_cpu, 1e-5, "softmax_cross_entropy loss");
      expect_equal(correct_gpu, correct_cpu, "softmax_cross_entropy correct");
    }
  }
}

// Evaluation passes no gradient tensor.
TEST_F(LossCuda, SoftmaxCrossEntropyWithoutGradient) {
  const Tensor logits = random_tensor({64, 10}, 3, -3.0f, 3.0f);
  const Tensor labels = random_labels(64, 10, 4);
  Tensor none, loss_cpu = Tensor::zeros({1}), correct_cpu = Tensor::zeros({1});
  Tensor loss_gpu = loss_cpu.to(gpu()), correct_gpu = correct_cpu.to(gpu());
  softmax_cross_entropy(logits, labels, 0.0f, 1.0f, none, loss_cpu, correct_cpu);
  softmax_cross_entropy(logits.to(gpu()), labels.to(gpu()), 0.0f, 1.0f, none, loss_gpu,
                        correct_gpu);
  expect_close(loss_gpu, loss_cpu, 1e-5, "softmax_cross_entropy loss without gradient");
  expect_equal(correct_gpu, correct_cpu, "softmax_cross_entropy correct without gradient");
}

TEST_F(LossCuda, MeanSquaredError) {
  const Tensor pred = random_tensor({50, 7}, 5), target = random_tensor({50, 7}, 6);
  Tensor loss_cpu = Tensor::full({1}, 0.25f), loss_gpu = loss_cpu.to(gpu());
  Tensor d_cpu = Tensor::empty(pred.shape()), d_gpu = poisoned(pred.shape());
  mean_squared_error(pred, target, 0.02f, d_cpu, loss_cpu);
  mean_squared_error(pred.to(gpu()), target.to(gpu()), 0.02f, d_gpu, loss_gpu);
  expect_close(d_gpu, d_cpu, 1e-5, "mean_squared_error gradient");
  expect_close(loss_gpu, loss_cpu, 1e-5, "mean_squared_error loss");
}

// Parameters of several sizes (a bias, the MLP's first matrix, three elements, a
// conv weight), stepped three times on both devices.
const Shape kParameterShapes[] = {{10}, {128, 784}, {3}, {64, 1, 3, 3}};

struct Parameters {
  std::vector<Tensor> value, grad, state0, state1;
};

Parameters parameters(Device device, std::uint32_t seed) {
  Parameters p;
  for (const Shape& shape : kParameterShapes) {
    p.value.push_back(random_tensor(shape, seed++).to(device));
    p.grad.push_back(random_tensor(shape, seed++).to(device));
    p.state0.push_back(random_tensor(shape, seed++, 0.0f, 0.1f).to(device));
    p.state1.push_back(random_tensor(shape, seed++, 0.0f, 0.01f).to(device));
  }
  return p;
}

std::vector<ParameterUpdate> updates(Parameters& p, bool states) {
  std::vector<ParameterUpdate> out;
  for (std::size_t i = 0; i < p.value.size(); ++i)
    out.push_back({&p.value[i],
                   &p.grad[i],
                   {states ? &p.state0[i] : nullptr, states ? &p.state1[i] : nullptr}});
  return out;
}

void expect_parameters_equal(const Parameters& g, const Parameters& c, const std::string& what) {
  for (std::size_t i = 0; i < c.value.size(); ++i) {
    expect_equal(g.value[i], c.value[i], what + " value " + std::to_string(i));
    expect_equal(g.state0[i], c.state0[i], what + " state " + std::to_string(i));
    expect_equal(g.state1[i], c.state1[i], what + " second state " + std::to_string(i));
  }
}

TEST_F(OptimizerCuda, AdamWMultiTensorStep) {
  Parameters c = parameters(Device::cpu(), 100), g = parameters(gpu(), 100);
  for (int step = 1; step <= 3; ++step) {
    const AdamWScalars s{1.0f - 1e-3f * 0.01f,
                         0.9f,
                         0.999f,
                         0.1f,
                         0.001f,
                         1e-3f / (1.0f - std::pow(0.9f, static_cast<float>(step))),
                         std::sqrt(1.0f - std::pow(0.999f, static_cast<float>(step))),
                         1e-8f};
    adamw_multi_step(s, updates(c, true));
    adamw_multi_step(s, updates(g, true));
  }
  expect_parameters_equal(g, c, "adamw");
  // The single-tensor step is the same update.
  const AdamWScalars s{0.99f, 0.9f, 0.999f, 0.1f, 0.001f, 0.01f, 0.05f, 1e-8f};
  adamw_step(s, c.value[1], c.grad[1], c.state0[1], c.state1[1]);
  adamw_step(s, g.value[1], g.grad[1], g.state0[1], g.state1[1]);
  expect_parameters_equal(g, c, "adamw single tensor");
}

TEST_F(OptimizerCuda, SgdVariantsMultiTensorStep) {
  SgdScalars plain;
  plain.lr = 0.05f;
  SgdScalars momentum = plain;
  momentum.momentum = true;
  momentum.buffer_momentum = 0.9f;
  momentum.weight_decay = 1e-4f;
  SgdScalars nesterov = momentum;
  nesterov.nesterov = true;
  nesterov.nesterov_momentum = 0.9f;
  for (const SgdScalars& s : {plain, momentum, nesterov}) {
    Parameters c = parameters(Device::cpu(), 200), g = parameters(gpu(), 200);
    for (int step = 0; step < 3; ++step) {
      sgd_multi_step(s, updates(c, s.momentum));
      sgd_multi_step(s, updates(g, s.momentum));
    }
    expect_parameters_equal(g, c,
                            s.nesterov   ? "sgd nesterov"
                            : s.momentum ? "sgd momentum"
                                         : "sgd");
    sgd_step(s, c.value[0], c.grad[0], c.state0[0]);
    sgd_step(s, g.value[0], g.grad[0], g.state0[0]);
    expect_parameters_equal(g, c, "sgd single tensor");
  }
}

TEST_F(OptimizerCuda, SumSquaresAndScale) {
  const Tensor x = random_tensor({1000, 257}, 7);
  Tensor total_cpu = Tensor::full({1}, 3.0f), total_gpu = total_cpu.to(gpu());
  sum_squares(x, total_cpu);
  sum_squares(x.to(gpu()), total_gpu);
  expect_close(total_gpu, total_cpu, 1e-6, "sum_squares");
  Tensor y_cpu = x.clone(), y_gpu = x.to(gpu());
  scale(y_cpu, 0.37f);
  scale(y_gpu, 0.37f);
  expect_equal(y_gpu, y_cpu, "scale");
}

// Clipping on the device: the factor is read where the sum of squares is, in
// double on both twins, so the scaled values are the same bits.
TEST_F(OptimizerCuda, ClipByNormAndAddNorm) {
  const Tensor x = random_tensor({300, 77}, 9);
  for (const float max_norm : {1.0f, 1e6f}) {  // clipped, and left alone
    Tensor total = Tensor::zeros({1});
    sum_squares(x, total);
    Tensor y_cpu = x.clone(), y_gpu = x.to(gpu());
    clip_by_norm(y_cpu, total, max_norm);
    clip_by_norm(y_gpu, total.to(gpu()), max_norm);
    expect_equal(y_gpu, y_cpu, "clip_by_norm " + std::to_string(max_norm));
    Tensor norm_cpu = Tensor::full({1}, 2.0f), norm_gpu = norm_cpu.to(gpu());
    add_norm(total, norm_cpu);
    add_norm(total.to(gpu()), norm_gpu);
    expect_equal(norm_gpu, norm_cpu, "add_norm");
  }
}

}  // namespace
}  // namespace kiln::ops::test
