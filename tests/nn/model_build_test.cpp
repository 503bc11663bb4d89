// Building models from their specs: parameter names and initial values, the spec
// with defaults filled in, and the errors a bad spec gives.
#include <kiln/error.h>
#include <kiln/nn/model.h>
#include <kiln/nn/rng.h>

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "nn/gradient_checker.h"
#include "support/support.h"

namespace kiln::nn {
namespace {

using Json = nlohmann::json;

Model build(const char* spec, std::uint64_t seed = 1) {
  return Model::build(Json::parse(spec), seed);
}

// torch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases,
// drawn from the Init stream with one running element offset over the parameters
// in build order.
TEST(ModelInit, ParametersAreUniformDrawsAtRunningOffsets) {
  Model model = build(R"({"input": [2, 3, 3], "layers": [
      {"conv2d": {"out": 4, "kernel": 2}}, "relu", "flatten", {"linear": {"out": 5}}]})",
                      42);
  const std::vector<Parameter*> p = model.parameters();
  ASSERT_EQ(p.size(), 4u);
  const std::vector<std::string> names{"layers.0.weight", "layers.0.bias", "layers.3.weight",
                                       "layers.3.bias"};
  const std::vector<float> bounds{1 / std::sqrt(8.0f), 1 / std::sqrt(8.0f), 1 / std::sqrt(16.0f),
                                  1 / std::sqrt(16.0f)};
  const std::vector<Shape> shapes{{4, 2, 2, 2}, {4}, {5, 16}, {5}};
  std::uint64_t offset = 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    EXPECT_EQ(p[k]->name, names[k]);
    ASSERT_EQ(p[k]->value.shape(), shapes[k]) << names[k];
    EXPECT_EQ(p[k]->grad.to_vector(), std::vector<float>(p[k]->value.numel(), 0.0f));
    const std::vector<float> values = p[k]->value.to_vector();
    for (std::size_t i = 0; i < values.size(); ++i)
      EXPECT_FLOAT_EQ(values[i], (2 * uniform01(42, RngStream::Init, offset + i) - 1) * bounds[k])
          << names[k] << "[" << i << "]";
    offset += values.size();
  }
  EXPECT_EQ(model.parameter_count(), 32 + 4 + 80 + 5);
}

TEST(ModelInit, SameSeedSameModelOtherSeedOtherModel) {
  const char* spec = R"({"input": [6], "layers": [{"linear": {"out": 4}}]})";
  Model a = build(spec, 7), b = build(spec, 7), c = build(spec, 8);
  EXPECT_EQ(a.parameters()[0]->value.to_vector(), b.parameters()[0]->value.to_vector());
  EXPECT_NE(a.parameters()[0]->value.to_vector(), c.parameters()[0]->value.to_vector());
}

TEST(ModelInit, NormLayersStartAtOneAndZero) {
  Model model = build(R"({"input": [3, 2, 2], "layers": [{"batchnorm2d": {}}, "flatten",
                          {"layernorm": {}}]})");
  const std::vector<Parameter*> p = model.parameters();
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0]->name, "layers.0.weight");
  EXPECT_EQ(p[0]->value.to_vector(), std::vector<float>(3, 1.0f));
  EXPECT_EQ(p[1]->value.to_vector(), std::vector<float>(3, 0.0f));
  EXPECT_EQ(p[2]->name, "layers.2.weight");
  EXPECT_EQ(p[2]->value.to_vector(), std::vector<float>(12, 1.0f));
  const auto buffers = model.buffers();
  ASSERT_EQ(buffers.size(), 2u);
  EXPECT_EQ(buffers[0].second->to_vector(), std::vector<float>(3, 0.0f));
  EXPECT_EQ(buffers[1].second->to_vector(), std::vector<float>(3, 1.0f));
}

TEST(ModelSpec, DefaultsAreFilledInAndShapesInferred) {
  Model model = build(R"({"input": [1, 8, 8], "layers": [
      {"conv2d": {"out": 4}}, {"maxpool2d": {}}, {"residual": ["gelu"]},
      "global_avgpool", {"dropout": {}}, {"linear": {"out": 2, "bias": false}}]})");
  const Json expected = Json::parse(R"({"input": [1, 8, 8], "layers": [
      {"conv2d": {"out": 4, "kernel": 3, "stride": 1, "padding": 0, "bias": true}},
      {"maxpool2d": {"kernel": 2, "stride": 2, "padding": 0}},
      {"residual": ["gelu"]}, "global_avgpool", {"dropout": {"p": 0.5}},
      {"linear": {"out": 2, "bias": false}}]})");
  EXPECT_EQ(model.spec(), expected);
  EXPECT_EQ(model.input_shape(), (Shape{1, 8, 8}));
  EXPECT_EQ(model.output_shape(), (Shape{2}));
  // A spec with its defaults filled in builds the same model.
  EXPECT_EQ(Model::build(model.spec(), 1).spec(), expected);
  const std::vector<std::string> lines = kiln::test::lines_of(model.summary());
  EXPECT_EQ(lines.size(), 2u + 7u);  // header, input, 6 layers plus the residual's body
}

TEST(ModelSpec, ForwardRefusesAnInputOfAnotherShape) {
  Model model = build(R"({"input": [4], "layers": [{"linear": {"out": 2}}]})");
  ForwardContext context;
  try {
    model.forward(Tensor::zeros({3, 5}), {}, context);
    ADD_FAILURE() << "accepted [3, 5]";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("expected [3, 4]"), std::string::npos) << e.what();
  }
}

struct BadSpec {
  const char* spec;
  std::vector<const char*> fragments;  // each must appear in the message
};

TEST(ModelSpec, BadSpecsAreConfigErrorsNamingTheLayer) {
  const std::vector<BadSpec> cases{
      {R"({"input": [4], "layers": ["relu", {"linaer": {"out": 2}}]})",
       {"layers[1]", "unknown layer type 'linaer'", "did you mean 'linear'"}},
      {R"({"input": [4], "layers": [{"linear": {"out": 2, "baias": true}}]})",
       {"layers[0] (linear)", "unknown setting 'baias'", "did you mean 'bias'"}},
      {R"({"input": [4], "layers": [{"linear": {"out": 2.5}}]})",
       {"layers[0] (linear)", "out must be an integer"}},
      {R"({"input": [4], "layers": [{"linear": {}}]})", {"layers[0] (linear)", "missing 'out'"}},
      {R"({"input": [1, 4, 4], "layers": [{"conv2d": {"out": 2, "kernel": 0}}]})",
       {"layers[0] (conv2d)", "kernel must be >= 1, got 0"}},
      {R"({"input": [1, 4, 4], "layers": [{"conv2d": {"out": 2, "kernel": 7}}]})",
       {"layers[0] (conv2d)", "larger than"}},
      {R"({"input": [4], "layers": [{"dropout": {"p": 1.5}}]})",
       {"layers[0] (dropout)", "p must lie in"}},
      {R"({"input": [4], "layers": [{"dropout": {"p": "half"}}]})",
       {"layers[0] (dropout)", "p must be a number"}},
      {R"({"input": [4], "layers": [{"linear": {"out": 2, "bias": 1}}]})",
       {"layers[0] (linear)", "bias must be true or false"}},
      {R"({"input": [4], "layers": [{"relu": {"inplace": true}}]})",
       {"layers[0] (relu)", "takes no settings"}},
      {R"({"input": [1, 4, 4], "layers": ["relu", {"linear": {"out": 2}}]})",
       {"layers[1] (linear)", "needs a flat input", "flatten"}},
      {R"({"input": [4], "layers": [{"conv2d": {"out": 2}}]})",
       {"layers[0] (conv2d)", "[channels, height, width]"}},
      {R"({"input": [2, 4, 4], "layers": ["relu", {"residual": [{"conv2d": {"out": 3, "padding": 1}}]}]})",
       {"layers[1] (residual)", "must keep the shape"}},
      {R"({"input": [2, 4, 4], "layers": [{"residual": ["relu", {"maxpool2d": {"kernel": 0}}]}]})",
       {"layers[0].residual[1] (maxpool2d)", "kernel must be >= 1"}},
      {R"({"input": [4], "layers": [{"block": "missing"}], "blocks": {"mlp": ["relu"]}})",
       {"layers[0]", "no block named 'missing'"}},
      {R"({"input": [4], "layers": ["relu", {"block": "loop"}], "blocks": {"loop": [{"block": "loop"}]}})",
       {"layers[1]", "more than 16 deep"}},
      {R"({"input": [4], "layers": [{"block": 3}], "blocks": {}})",
       {"layers[0]", "a block is named by a string"}},
      {R"({"input": [4], "layers": []})", {"layers", "non-empty list"}},
      {R"({"input": [4], "layers": [{"linear": {"out": 2}, "relu": null}]})",
       {"layers[0]", "one-key mapping"}},
      {R"({"input": [0], "layers": ["relu"]})", {"'input' extents must be positive"}},
      {R"({"layers": ["relu"]})", {"'input' must list"}},
      {R"({"input": [4], "layers": ["relu"], "optimiser": {}})", {"unknown key 'optimiser'"}},
  };
  for (const BadSpec& bad : cases) {
    try {
      Model::build(Json::parse(bad.spec), 1);
      ADD_FAILURE() << "built " << bad.spec;
    } catch (const ConfigError& e) {
      for (const char* fragment : bad.fragments)
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
            << bad.spec << "\n  message: " << e.what() << "\n  lacks: " << fragment;
    }
  }
}

// `lists` lists of layers nested inside one another around one linear layer.
Json nested_spec(int lists) {
  Json layers = Json::array({Json{{"linear", {{"out", 2}}}}});
  for (int i = 1; i < lists; ++i) layers = Json::array({layers});
  return Json{{"input", {3}}, {"layers", layers}};
}

TEST(ModelSpec, LayersNestAtMost32Deep) {
  EXPECT_EQ(Model::build(nested_spec(32), 1).output_shape(), Shape{2});
  try {
    Model::build(nested_spec(33), 1);
    ADD_FAILURE() << "built 33 nested lists";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("layers nest more than 32 levels deep"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kiln::nn
