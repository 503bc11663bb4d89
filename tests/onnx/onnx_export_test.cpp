// What export_model writes, read back with the tests' own protobuf reader: the
// model header, one node (or a few) per layer in order, every tensor of the model
// as an initializer with its bytes, and the refusals.
#include <kiln/error.h>
#include <kiln/onnx.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <map>
#include <set>

#include "nn/layer.h"
#include "onnx/graph_writer.h"
#include "onnx/model_graph.h"
#include "onnx/onnx_test_support.h"

namespace kiln::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Field numbers of onnx.proto, as an ONNX reader sees them.
constexpr int kModelIrVersion = 1, kModelProducer = 2, kModelGraph = 7, kModelOpset = 8,
              kModelMetadata = 14;
constexpr int kGraphNode = 1, kGraphName = 2, kGraphInitializer = 5, kGraphInput = 11,
              kGraphOutput = 12;
constexpr int kNodeInput = 1, kNodeOutput = 2, kNodeOpType = 4, kNodeAttribute = 5;

struct ReadNode {
  std::string op_type;
  std::vector<std::string> inputs, outputs;
  std::map<std::string, std::string> attributes;  // name -> encoded AttributeProto
};

std::vector<ReadNode> read_nodes(const std::string& graph) {
  std::vector<ReadNode> nodes;
  for (const std::string& node : wire_strings(graph, kGraphNode)) {
    ReadNode read{wire_strings(node, kNodeOpType).at(0),
                  wire_strings(node, kNodeInput),
                  wire_strings(node, kNodeOutput),
                  {}};
    for (const std::string& attribute : wire_strings(node, kNodeAttribute))
      read.attributes[wire_strings(attribute, 1).at(0)] = attribute;
    nodes.push_back(std::move(read));
  }
  return nodes;
}

// name -> (dims, raw_data) of each initializer.
std::map<std::string, std::pair<std::vector<std::int64_t>, std::string>> read_initializers(
    const std::string& graph) {
  std::map<std::string, std::pair<std::vector<std::int64_t>, std::string>> out;
  for (const std::string& tensor : wire_strings(graph, kGraphInitializer)) {
    EXPECT_THAT(wire_numbers(tensor, 2), ElementsAre(1u));  // FLOAT
    std::vector<std::int64_t> dims;
    for (const std::uint64_t dim : wire_numbers(tensor, 1))
      dims.push_back(static_cast<std::int64_t>(dim));
    out[wire_strings(tensor, 8).at(0)] = {dims, wire_strings(tensor, 9).at(0)};
  }
  return out;
}

TEST(OnnxExport, ModelHeaderNamesIrVersionOpsetAndProducer) {
  nn::Model model = all_layers_model();
  const onnx::ExportedModel exported =
      onnx::export_model(model, {"test-graph", {{"kiln.model_name", "m"}}});
  EXPECT_THAT(wire_numbers(exported.bytes, kModelIrVersion), ElementsAre(8u));
  EXPECT_THAT(wire_strings(exported.bytes, kModelProducer), ElementsAre("kiln"));
  const auto opsets = wire_strings(exported.bytes, kModelOpset);
  ASSERT_EQ(opsets.size(), 1u);
  EXPECT_TRUE(wire_strings(opsets[0], 1).empty());  // the default domain, ai.onnx
  EXPECT_THAT(wire_numbers(opsets[0], 2), ElementsAre(17u));
  std::map<std::string, std::string> metadata;
  for (const std::string& entry : wire_strings(exported.bytes, kModelMetadata))
    metadata[wire_strings(entry, 1).at(0)] = wire_strings(entry, 2).at(0);
  EXPECT_EQ(metadata.at("kiln.model_name"), "m");
  EXPECT_EQ(nlohmann::json::parse(metadata.at("kiln.model")), model.spec());
  const std::string graph = wire_strings(exported.bytes, kModelGraph).at(0);
  EXPECT_THAT(wire_strings(graph, kGraphName), ElementsAre("test-graph"));
}

TEST(OnnxExport, OneNodeOrAFewPerLayerInOrder) {
  nn::Model model = all_layers_model();
  const onnx::ExportedModel exported = onnx::export_model(model);
  const std::string graph = wire_strings(exported.bytes, kModelGraph).at(0);
  const std::vector<ReadNode> nodes = read_nodes(graph);
  EXPECT_EQ(exported.nodes, nodes.size());
  std::vector<std::string> ops, outputs;
  for (const ReadNode& node : nodes) {
    ops.push_back(node.op_type);
    outputs.push_back(node.outputs.at(0));
  }
  const std::vector<std::string> gelu = {"Mul", "Mul", "Erf", "Add", "Mul"};
  std::vector<std::string> expected_ops = {"Conv", "BatchNormalization", "Relu", "Conv",
                                           "BatchNormalization"};  // residual body
  expected_ops.insert(expected_ops.end(), gelu.begin(), gelu.end());
  for (const char* op : {"Add", "MaxPool", "Conv", "AveragePool", "LayerNormalization",
                         "GlobalAveragePool", "Flatten", "Flatten", "Gemm"})
    expected_ops.push_back(op);
  expected_ops.insert(expected_ops.end(), gelu.begin(), gelu.end());
  for (const char* op :
       {"LayerNormalization", "Gemm", "Relu", "Add", "Sigmoid", "Mul", "LeakyRelu", "Gemm"})
    expected_ops.push_back(op);
  EXPECT_EQ(ops, expected_ops);
  // Values are named after the layers; the last one is the graph's output.
  EXPECT_EQ(outputs[0], "layers.0");
  EXPECT_EQ(outputs[3], "layers.3.body.0");
  EXPECT_EQ(outputs[10], "layers.3");
  EXPECT_EQ(outputs[11], "layers.4.0");
  EXPECT_EQ(outputs.back(), "logits");
  EXPECT_THAT(nodes[10].inputs, ElementsAre("layers.2", "layers.3.body.2"));  // x + body(x)
  // Dropout adds no node: the layer norm after layers[7] feeds global pooling.
  EXPECT_THAT(nodes[15].inputs, ElementsAre("layers.6"));
  EXPECT_EQ(wire_strings(wire_strings(graph, kGraphInput).at(0), 1).at(0), "input");
  EXPECT_EQ(wire_strings(wire_strings(graph, kGraphOutput).at(0), 1).at(0), "logits");
}

TEST(OnnxExport, LayerSettingsBecomeAttributes) {
  nn::Model model = all_layers_model();
  const std::string graph = wire_strings(onnx::export_model(model).bytes, kModelGraph).at(0);
  const std::vector<ReadNode> nodes = read_nodes(graph);
  auto ints = [](const std::string& attribute) { return wire_numbers(attribute, 8); };
  const ReadNode& max_pool = nodes[11];
  ASSERT_EQ(max_pool.op_type, "MaxPool");
  EXPECT_THAT(ints(max_pool.attributes.at("kernel_shape")), ElementsAre(3u, 3u));
  EXPECT_THAT(ints(max_pool.attributes.at("strides")), ElementsAre(2u, 2u));
  EXPECT_THAT(ints(max_pool.attributes.at("pads")), ElementsAre(1u, 1u, 1u, 1u));
  const ReadNode& average = nodes[13];
  ASSERT_EQ(average.op_type, "AveragePool");
  EXPECT_THAT(wire_numbers(average.attributes.at("count_include_pad"), 3), ElementsAre(1u));
  const ReadNode& norm = nodes[4];
  ASSERT_EQ(norm.op_type, "BatchNormalization");
  EXPECT_THAT(norm.inputs,
              ElementsAre("layers.3.body.0", "layers.3.body.1.weight", "layers.3.body.1.bias",
                          "layers.3.body.1.running_mean", "layers.3.body.1.running_var"));
  EXPECT_EQ(std::bit_cast<float>(
                static_cast<std::uint32_t>(wire_numbers(norm.attributes.at("epsilon"), 2).at(0))),
            0.001f);
  // A linear layer without bias has no third input; weights are [out, in]: transB.
  const ReadNode& linear = nodes[18];
  ASSERT_EQ(linear.op_type, "Gemm");
  EXPECT_THAT(linear.inputs, ElementsAre("layers.9", "layers.10.weight"));
  EXPECT_THAT(wire_numbers(linear.attributes.at("transB"), 3), ElementsAre(1u));
}

TEST(OnnxExport, EveryTensorIsAnInitializerWithItsBytes) {
  nn::Model model = all_layers_model();
  const std::string graph = wire_strings(onnx::export_model(model).bytes, kModelGraph).at(0);
  auto initializers = read_initializers(graph);
  std::set<std::string> expected = {"kiln.half", "kiln.inv_sqrt2", "kiln.one"};
  auto check = [&](const std::string& name, const Tensor& tensor) {
    expected.insert(name);
    ASSERT_TRUE(initializers.contains(name)) << name;
    const auto& [dims, raw] = initializers.at(name);
    EXPECT_EQ(dims, tensor.shape()) << name;
    ASSERT_EQ(raw.size(), tensor.nbytes()) << name;
    EXPECT_EQ(std::memcmp(raw.data(), tensor.raw(), raw.size()), 0) << name;
  };
  for (const nn::Parameter* parameter : model.parameters())
    check(parameter->name, parameter->value);
  for (const auto& [name, tensor] : model.buffers()) check(name, *tensor);
  std::set<std::string> names;
  for (const auto& [name, tensor] : initializers) names.insert(name);
  EXPECT_EQ(names, expected);
  EXPECT_EQ(initializers.at("kiln.inv_sqrt2").first, std::vector<std::int64_t>{});  // a scalar
}

TEST(OnnxExport, AModelOfDropoutsPassesItsInputThrough) {
  nn::Model model =
      nn::Model::build(nlohmann::json::parse(R"({"input": [3], "layers": ["dropout"]})"), 0);
  const std::string graph = wire_strings(onnx::export_model(model).bytes, kModelGraph).at(0);
  const std::vector<ReadNode> nodes = read_nodes(graph);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].op_type, "Identity");
  EXPECT_THAT(nodes[0].inputs, ElementsAre("input"));
  EXPECT_THAT(nodes[0].outputs, ElementsAre("logits"));
}

onnx::ModelParts parts_of(nn::Model& model) {
  onnx::ModelParts parts{model.input_shape(), model.output_shape(), {}};
  for (const nn::Parameter* parameter : model.parameters())
    parts.tensors[parameter->name] = parameter->value;
  for (const auto& [name, tensor] : model.buffers()) parts.tensors[name] = *tensor;
  return parts;
}

// A layer type kiln might grow that has no ONNX form.
class Attention final : public nn::Layer {
 public:
  std::string type() const override { return "attention"; }
  Shape output_shape(const Shape& input) const override { return input; }
  Tensor forward(const Tensor& x, const nn::StepInfo&, nn::Saved&) override { return x; }
  Tensor backward(const Tensor& dy, nn::Saved&, bool, const nn::LayerDone&) override { return dy; }
  nlohmann::json config() const override { return "attention"; }
};

TEST(OnnxExport, RefusesALayerTypeWithoutAnOnnxFormNamingIt) {
  // layers: [residual: [attention]], built by hand; the model lends its tensors.
  nn::Model model = nn::Model::build(
      nlohmann::json::parse(R"({"input": [4], "layers": [{"linear": {"out": 4}}]})"), 0);
  std::vector<std::unique_ptr<nn::Layer>> body;
  body.push_back(std::make_unique<Attention>());
  std::vector<std::unique_ptr<nn::Layer>> layers;
  layers.push_back(nn::make_residual(nn::make_sequential(std::move(body), {{4}}, "sequential"), {4},
                                     "layers[1]"));
  const auto root = nn::make_sequential(std::move(layers), {{4}}, "sequential");
  try {
    onnx::model_graph(*root, parts_of(model), "g");
    FAIL() << "exported a layer it has no ONNX form for";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("onnx export: layers.0.body.0 (attention): this layer "
                                    "type has no ONNX export"));
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

TEST(OnnxExport, ATensorNoLayerUsesIsABugNotASilentExport) {
  nn::Model model = nn::Model::build(
      nlohmann::json::parse(R"({"input": [4], "layers": [{"linear": {"out": 4}}]})"), 0);
  onnx::ModelParts parts = parts_of(model);
  parts.tensors["layers.0.scale"] = Tensor::zeros({4});
  EXPECT_THROW(
      {
        try {
          onnx::model_graph(model.root_layer(), parts, "g");
        } catch (const InternalError& e) {
          EXPECT_THAT(e.what(), HasSubstr("tensor 'layers.0.scale'"));
          throw;
        }
      },
      InternalError);
  parts = parts_of(model);
  parts.tensors.erase("layers.0.bias");
  EXPECT_THROW(onnx::model_graph(model.root_layer(), parts, "g"), InternalError);
}

}  // namespace
}  // namespace kiln::test
