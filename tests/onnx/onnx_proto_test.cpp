// The ONNX messages, byte for byte. The expected bytes are worked out by hand from
// the field numbers and types of onnx/onnx.proto (listed in onnx/onnx_proto.h);
// tests/onnx/onnxruntime_test.cpp checks that a real reader agrees.
#include <gtest/gtest.h>

#include <string>

#include "onnx/onnx_proto.h"
#include "support/support.h"

namespace kiln::onnx::proto {
namespace {

using test::from_hex;

TEST(OnnxProto, IntAttribute) {
  const std::string expected = from_hex(
      "0a0461786973"  // field 1 (name), 4 bytes: "axis"
      "1801"          // field 3 (i), varint 1
      "a00102");      // field 20 (type), varint 2: INT
  EXPECT_EQ(encode(Attribute{"axis", std::int64_t{1}}), expected);
}

TEST(OnnxProto, FloatAttribute) {
  const std::string expected = from_hex(
      "0a03657073"  // name "eps"
      "150000003f"  // field 2 (f), fixed32: 0.5f
      "a00101");    // type FLOAT
  EXPECT_EQ(encode(Attribute{"eps", 0.5f}), expected);
}

TEST(OnnxProto, IntsAttributeRepeatsItsFieldOncePerValue) {
  const std::string expected = from_hex(
      "0a0470616473"            // name "pads"
      "40014002"                // field 8 (ints), varint: 1, 2
      "40ffffffffffffffffff01"  // -1: ten bytes
      "a00107");                // type INTS
  EXPECT_EQ(encode(Attribute{"pads", std::vector<std::int64_t>{1, 2, -1}}), expected);
}

TEST(OnnxProto, Node) {
  const std::string expected = from_hex(
      "0a01780a0162"                  // field 1 (input): "x", "b"
      "120179"                        // field 2 (output): "y"
      "1a0179"                        // field 3 (name): "y"
      "220447656d6d"                  // field 4 (op_type): "Gemm"
      "2a0d"                          // field 5 (attribute), 13 bytes:
      "0a067472616e73421801a00102");  //   {name "transB", i 1, type INT}
  EXPECT_EQ(encode(Node{"Gemm", "y", {"x", "b"}, {"y"}, {{"transB", std::int64_t{1}}}}), expected);
}

TEST(OnnxProto, NodeWithoutNameOrAttributesLeavesThemOut) {
  // input "x", output "y", op_type "Relu"
  EXPECT_EQ(encode(Node{"Relu", "", {"x"}, {"y"}, {}}), from_hex("0a0178120179220452656c75"));
}

TEST(OnnxProto, InitializerHoldsLittleEndianFloatsInRawData) {
  const std::string raw = from_hex("0000803f000000c0");  // 1.0f, -2.0f
  const std::string expected = from_hex(
      "08020801"                // field 1 (dims): 2, 1
      "1001"                    // field 2 (data_type): FLOAT
      "420177"                  // field 8 (name): "w"
      "4a080000803f000000c0");  // field 9 (raw_data), 8 bytes
  EXPECT_EQ(encode(Initializer{"w", {2, 1}, raw}), expected);
}

TEST(OnnxProto, ScalarInitializerHasNoDims) {
  // data_type FLOAT, name "h", raw_data 0.5f
  EXPECT_EQ(encode(Initializer{"h", {}, from_hex("0000003f")}), from_hex("10014201684a040000003f"));
}

TEST(OnnxProto, ValueInfoWithSymbolicBatchAxis) {
  const std::string expected = from_hex(
      "0a05696e707574"      // field 1 (name): "input"
      "1213"                // field 2 (type), 19 bytes: TypeProto
      "0a11"                //   field 1 (tensor_type), 17 bytes
      "0801"                //     field 1 (elem_type): FLOAT
      "120d"                //     field 2 (shape), 13 bytes: TensorShapeProto
      "0a0712056261746368"  //     field 1 (dim) {field 2 (dim_param): "batch"}
      "0a020803");          //     field 1 (dim) {field 1 (dim_value): 3}
  EXPECT_EQ(encode(ValueInfo{"input", {{0, "batch"}, {3, ""}}}), expected);
}

TEST(OnnxProto, GraphFieldsInOrder) {
  Graph graph;
  graph.name = "g";
  graph.nodes.push_back({"Relu", "", {"x"}, {"y"}, {}});
  graph.initializers.push_back({"h", {}, from_hex("0000003f")});
  graph.inputs.push_back({"x", {{1, ""}}});
  graph.outputs.push_back({"y", {{1, ""}}});
  // ValueInfo {name, type {tensor_type {elem_type FLOAT, shape {dim {dim_value 1}}}}}
  auto value_info = [](const char* name_hex) {
    return std::string("0a01") + name_hex + "120a0a08080112040a020801";
  };
  const std::string value_x = value_info("78"), value_y = value_info("79");
  const std::string expected =
      from_hex(std::string("0a0c") + "0a0178120179220452656c75"  // field 1 (node)
               + "120167"                                        // field 2 (name): "g"
               + "2a0b" + "1001420168" + "4a040000003f"          // field 5 (initializer)
               + "5a0f" + value_x                                // field 11 (input)
               + "620f" + value_y);                              // field 12 (output)
  EXPECT_EQ(encode(graph), expected);
}

TEST(OnnxProto, ModelWithOpsetAndMetadata) {
  Model model;
  model.ir_version = 8;
  model.opset_version = 17;
  model.producer_name = "kiln";
  model.producer_version = "1";
  model.metadata = {{"k", "v"}};
  model.graph.name = "g";
  const std::string expected = from_hex(
      "0808"                // field 1 (ir_version): 8
      "12046b696c6e"        // field 2 (producer_name): "kiln"
      "1a0131"              // field 3 (producer_version): "1"
      "3a03120167"          // field 7 (graph): {name "g"}
      "42021011"            // field 8 (opset_import): {field 2 (version): 17}, default domain
      "72060a016b120176");  // field 14 (metadata_props): {key "k", value "v"}
  EXPECT_EQ(encode(model), expected);
}

}  // namespace
}  // namespace kiln::onnx::proto
