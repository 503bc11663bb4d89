// Model-level backward behaviour: gradients accumulate over micro-batches, and the
// gradient hook reports each bucket once, as soon as its gradients are final.
#include <kiln/nn/model.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "nn/gradient_checker.h"
#include "ops/loss.h"

namespace kiln::nn {
namespace {

using Json = nlohmann::json;
using test::random_tensor;

// No batch norm: its batch statistics would make two halves differ from the whole.
const char* kConvNet = R"([
    {"conv2d": {"out": 4, "kernel": 3, "padding": 1}}, "relu", {"maxpool2d": {}},
    {"residual": [{"conv2d": {"out": 4, "kernel": 3, "padding": 1}}, "gelu"]},
    "flatten", {"layernorm": {}}, {"linear": {"out": 3}}])";

Tensor labels_for(std::int64_t batch) {
  Tensor labels = Tensor::empty({batch}, DType::I32);
  for (std::int64_t i = 0; i < batch; ++i)
    labels.data<std::int32_t>()[i] = static_cast<std::int32_t>(i % 3);
  return labels;
}

// Forward, cross-entropy with grad scale 1/8, backward; returns the summed loss.
float accumulate(Model& model, const Tensor& x, const Tensor& labels) {
  ForwardContext context;
  const StepInfo step{Mode::Train, 1, 0};
  const Tensor logits = model.forward(x, step, context);
  Tensor dlogits = Tensor::empty(logits.shape()), loss = Tensor::zeros({1}),
         correct = Tensor::zeros({1});
  ops::softmax_cross_entropy(logits, labels, 0.0f, 1.0f / 8.0f, dlogits, loss, correct);
  model.backward(context, dlogits);
  return loss.to_vector()[0];
}

TEST(GradientAccumulation, TwoHalvesOfABatchGiveTheWholeBatchsGradients) {
  const Shape input{2, 6, 6};
  Model whole = test::build_model(Json::parse(kConvNet), input, Device::cpu(), 4);
  Model halves = test::build_model(Json::parse(kConvNet), input, Device::cpu(), 4);
  const Tensor x = random_tensor({8, 2, 6, 6}, 1);
  const Tensor labels = labels_for(8);
  whole.zero_grad();
  const float loss = accumulate(whole, x, labels);
  halves.zero_grad();
  const float loss_halves = accumulate(halves, x.rows(0, 4), labels.rows(0, 4)) +
                            accumulate(halves, x.rows(4, 8), labels.rows(4, 8));
  EXPECT_NEAR(loss_halves, loss, 1e-5 * loss);
  for (std::size_t k = 0; k < whole.parameters().size(); ++k) {
    const std::vector<float> a = whole.parameters()[k]->grad.to_vector();
    const std::vector<float> b = halves.parameters()[k]->grad.to_vector();
    double largest = 0.0;
    // Sums of the same terms in another order (other GEMM and convolution blockings).
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_NEAR(b[i], a[i], 1e-6 + 1e-4 * std::abs(a[i]))
          << whole.parameters()[k]->name << "[" << i << "]";
      largest = std::max(largest, static_cast<double>(std::abs(a[i])));
    }
    EXPECT_GT(largest, 1e-4) << whole.parameters()[k]->name;
  }
}

TEST(GradientAccumulation, ZeroGradClearsEveryGradient) {
  Model model = test::build_model(Json::parse(kConvNet), {2, 6, 6}, Device::cpu(), 4);
  accumulate(model, random_tensor({2, 2, 6, 6}, 2), labels_for(2));
  model.zero_grad();
  for (const Parameter* p : model.parameters())
    EXPECT_EQ(p->grad.to_vector(), std::vector<float>(p->grad.numel(), 0.0f)) << p->name;
}

// zero_grad_before_backward leaves the linear layers' memsets to their backward
// pass (which then writes instead of adding); the gradients must be those of
// zero_grad, over two micro-batches, from gradients left by an earlier step.
TEST(GradientAccumulation, ZeroGradBeforeBackwardGivesTheGradientsOfZeroGrad) {
  const Json layers = Json::parse(R"([
      {"conv2d": {"out": 3, "kernel": 3}}, "relu", "flatten", {"linear": {"out": 16}},
      {"residual": [{"linear": {"out": 16, "bias": false}}, "gelu"]}, {"layernorm": {}},
      {"linear": {"out": 3}}])");
  std::vector<std::vector<float>> expected;
  for (const bool before_backward : {false, true}) {
    Model model = test::build_model(layers, {2, 6, 6}, Device::cpu(), 4);
    accumulate(model, random_tensor({4, 2, 6, 6}, 5), labels_for(4));  // an earlier step's
    if (before_backward)
      model.zero_grad_before_backward();
    else
      model.zero_grad();
    const Tensor x = random_tensor({8, 2, 6, 6}, 6);
    const Tensor labels = labels_for(8);
    accumulate(model, x.rows(0, 4), labels.rows(0, 4));
    accumulate(model, x.rows(4, 8), labels.rows(4, 8));
    std::vector<std::vector<float>> grads;
    for (const Parameter* p : model.parameters()) grads.push_back(p->grad.to_vector());
    if (!before_backward) {
      expected = grads;
      continue;
    }
    ASSERT_EQ(grads.size(), expected.size());
    for (std::size_t k = 0; k < grads.size(); ++k)
      EXPECT_EQ(grads[k], expected[k]) << model.parameters()[k]->name;
  }
}

struct HookCall {
  int index;
  std::vector<Parameter*> parameters;
  std::vector<std::vector<float>> grads;  // as the hook saw them
};

std::vector<HookCall> backward_with_hook(Model& model, std::size_t bucket_bytes) {
  std::vector<HookCall> calls;
  model.set_gradient_hook(
      [&](const GradientBucket& bucket) {
        HookCall call{bucket.index, bucket.parameters, {}};
        for (const Parameter* p : bucket.parameters) call.grads.push_back(p->grad.to_vector());
        calls.push_back(std::move(call));
      },
      bucket_bytes);
  model.zero_grad();
  accumulate(model, random_tensor({2, 2, 6, 6}, 3), labels_for(2));
  return calls;
}

// Where in `all` the layer of `p` ("layers.3.body.0" of "layers.3.body.0.weight") starts.
std::size_t layer_start(const std::vector<Parameter*>& all, const Parameter* p) {
  const std::string layer = p->name.substr(0, p->name.rfind('.'));
  for (std::size_t i = 0; i < all.size(); ++i)
    if (all[i]->name.rfind(layer + ".", 0) == 0) return i;
  return all.size();
}

TEST(GradientHook, TinyBucketsComeOnePerParameterLastLayerFirst) {
  Model model = test::build_model(Json::parse(kConvNet), {2, 6, 6}, Device::cpu(), 4);
  const std::vector<Parameter*> all = model.parameters();
  const std::vector<HookCall> calls = backward_with_hook(model, 1);
  ASSERT_EQ(calls.size(), all.size());
  std::set<int> indices;
  std::size_t previous_layer = all.size();
  for (const HookCall& call : calls) {
    ASSERT_EQ(call.parameters.size(), 1u);
    indices.insert(call.index);
    // Buckets fill from the last parameter: bucket k holds the k-th from the end.
    EXPECT_EQ(call.parameters[0], all[all.size() - 1 - static_cast<std::size_t>(call.index)]);
    // Layers report last to first (within a layer, weight and bias finish together).
    const std::size_t layer = layer_start(all, call.parameters[0]);
    EXPECT_LE(layer, previous_layer) << call.parameters[0]->name;
    previous_layer = layer;
  }
  EXPECT_EQ(indices.size(), all.size());
  EXPECT_EQ(layer_start(all, calls.front().parameters[0]), layer_start(all, all.back()));
}

TEST(GradientHook, EachBucketOnceWithFinalGradientsCoveringAllParameters) {
  Model model = test::build_model(Json::parse(kConvNet), {2, 6, 6}, Device::cpu(), 4);
  const std::vector<Parameter*> all = model.parameters();
  // 200 bytes: a bucket closes once it holds 200 bytes, so here each takes a bias
  // and the next weight (or the layer norm's two vectors): 4 buckets for 8 tensors.
  const std::vector<HookCall> calls = backward_with_hook(model, 200);
  EXPECT_EQ(calls.size(), 4u);
  std::multiset<Parameter*> seen;
  for (std::size_t k = 0; k < calls.size(); ++k) {
    EXPECT_EQ(calls[k].index, static_cast<int>(k));
    for (std::size_t j = 0; j < calls[k].parameters.size(); ++j) {
      Parameter* p = calls[k].parameters[j];
      seen.insert(p);
      // What the hook saw is what backward left: nothing was added afterwards.
      EXPECT_EQ(calls[k].grads[j], p->grad.to_vector()) << p->name;
    }
  }
  EXPECT_EQ(seen, std::multiset<Parameter*>(all.begin(), all.end()));
  EXPECT_EQ(calls.front().parameters.front(), all.back());
  // A second backward pass reports every bucket again, once.
  EXPECT_EQ(backward_with_hook(model, 200).size(), calls.size());
}

}  // namespace
}  // namespace kiln::nn
