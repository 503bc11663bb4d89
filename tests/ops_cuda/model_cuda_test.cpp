// Whole models on CUDA against the same models on the CPU: one training step's
// forward output and parameter gradients, in float32 (1e-4 relative: the ops'
// tolerances compound over layers) and with bf16 autocast (3e-2 relative in norm:
// each bf16 product adds ~3e-3 and a gradient passes through up to five of them;
// and visibly not float32: the step's precision reaches the matrix products of
// both forward and backward). The models are smooth (GELU, average pooling): a
// ReLU or max pool would route a gradient differently wherever float rounding
// moves a value across zero or a tie, which the op tests check bit for bit.
#include <kiln/nn/model.h>

#include <string>

#include "ops_cuda/cuda_twin.h"

namespace kiln::ops::test {
namespace {

class ModelCuda : public CudaTwin {};

struct StepResult {
  Tensor output;
  std::vector<Tensor> grads;
};

StepResult train_step(const nlohmann::json& spec, Device device, nn::Precision precision) {
  nn::Model model = nn::Model::build(spec, 7, device);
  Shape shape = model.input_shape();
  shape.insert(shape.begin(), 32);
  const Tensor x = random_tensor(shape, 1).to(device);
  nn::ForwardContext context;
  const nn::StepInfo step{nn::Mode::Train, 11, 3, precision};
  StepResult result;
  result.output = model.forward(x, step, context).to(Device::cpu());
  const Tensor dy = random_tensor(result.output.shape(), 2).to(device);
  model.zero_grad();
  model.backward(context, dy);
  for (const nn::Parameter* p : model.parameters())
    result.grads.push_back(p->grad.to(Device::cpu()));
  return result;
}

void compare(const nlohmann::json& spec, const std::string& name) {
  const StepResult cpu = train_step(spec, Device::cpu(), nn::Precision::F32);
  const StepResult f32 = train_step(spec, gpu(), nn::Precision::F32);
  const StepResult bf16 = train_step(spec, gpu(), nn::Precision::BF16);
  // The CPU ignores the precision.
  const StepResult cpu_bf16 = train_step(spec, Device::cpu(), nn::Precision::BF16);
  expect_equal(cpu_bf16.output, cpu.output, name + " cpu output with bf16 asked");
  expect_close(f32.output, cpu.output, 1e-4, name + " output");
  expect_close_in_norm(bf16.output, cpu.output, 3e-2, name + " output bf16");
  ASSERT_EQ(f32.grads.size(), cpu.grads.size());
  for (std::size_t i = 0; i < cpu.grads.size(); ++i) {
    expect_close(f32.grads[i], cpu.grads[i], 1e-4, name + " grad " + std::to_string(i));
    // Weights' gradients are bf16 products; the last bias's is a float32 sum of dy.
    expect_close_in_norm(bf16.grads[i], cpu.grads[i], 3e-2,
                         name + " grad bf16 " + std::to_string(i), cpu.grads[i].rank() >= 2);
  }
}

TEST_F(ModelCuda, MlpStepMatchesTheCpu) {
  compare(nlohmann::json::parse(R"({"input": [1, 16, 16], "layers": ["flatten",
            {"linear": {"out": 64}}, "gelu", {"layernorm": {}}, {"linear": {"out": 32}}, "gelu",
            {"linear": {"out": 10}}]})"),
          "mlp");
}

TEST_F(ModelCuda, CnnStepMatchesTheCpu) {
  compare(nlohmann::json::parse(R"({"input": [1, 16, 16], "layers": [
            {"conv2d": {"out": 8, "kernel": 3, "padding": 1}}, {"batchnorm2d": {}}, "gelu",
            {"avgpool2d": {}}, {"conv2d": {"out": 16, "kernel": 3, "padding": 1}}, "gelu",
            "global_avgpool", {"linear": {"out": 10}}]})"),
          "cnn");
}

}  // namespace
}  // namespace kiln::ops::test
