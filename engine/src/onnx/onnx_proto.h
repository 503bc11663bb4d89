// The ONNX messages kiln writes, as plain structs, and their protobuf encoding
// (onnx/onnx.proto, proto2; encoded by hand with core/protobuf_wire.h like the
// TensorBoard events). Only what an inference graph of float32 tensors needs:
//   ModelProto         { int64 ir_version = 1; string producer_name = 2;
//                        string producer_version = 3; string doc_string = 6;
//                        GraphProto graph = 7; OperatorSetIdProto opset_import = 8;
//                        StringStringEntryProto metadata_props = 14; }
//   OperatorSetIdProto { string domain = 1; int64 version = 2; }
//   GraphProto         { NodeProto node = 1; string name = 2; TensorProto initializer = 5;
//                        ValueInfoProto input = 11; ValueInfoProto output = 12; }
//   NodeProto          { string input = 1; string output = 2; string name = 3;
//                        string op_type = 4; AttributeProto attribute = 5; }
//   AttributeProto     { string name = 1; float f = 2; int64 i = 3; int64 ints = 8;
//                        AttributeType type = 20 (FLOAT 1, INT 2, INTS 7); }
//   TensorProto        { int64 dims = 1; int32 data_type = 2; string name = 8;
//                        bytes raw_data = 9 (little-endian); }
//   ValueInfoProto     { string name = 1; TypeProto type = 2; }
//   TypeProto          { TypeProto.Tensor tensor_type = 1; }
//   TypeProto.Tensor   { int32 elem_type = 1; TensorShapeProto shape = 2; }
//   TensorShapeProto   { Dimension dim = 1; }
//   Dimension          { int64 dim_value = 1; string dim_param = 2; }
// Repeated scalars are written unpacked, one key per element, as proto2 does for
// fields without [packed = true]; every reader accepts that form.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace kiln::onnx::proto {

// TensorProto.DataType
inline constexpr std::int32_t kFloat = 1;

struct Attribute {
  std::string name;
  std::variant<std::int64_t, float, std::vector<std::int64_t>> value;
};

struct Node {
  std::string op_type;
  std::string name;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<Attribute> attributes;
};

// A float32 constant: dims and the elements' bytes, little-endian, row-major.
struct Initializer {
  std::string name;
  std::vector<std::int64_t> dims;
  std::string raw_data;
};

// One axis of a graph input or output: a fixed extent, or a named symbolic one
// ("batch") when `param` is not empty.
struct Dimension {
  std::int64_t value = 0;
  std::string param;
};

// A float32 tensor flowing in or out of the graph.
struct ValueInfo {
  std::string name;
  std::vector<Dimension> dims;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;  // in topological order
  std::vector<Initializer> initializers;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
};

struct Model {
  std::int64_t ir_version = 0;
  std::int64_t opset_version = 0;  // of the default domain, ai.onnx
  std::string producer_name;
  std::string producer_version;
  std::string doc_string;
  std::vector<std::pair<std::string, std::string>> metadata;
  Graph graph;
};

std::string encode(const Attribute& attribute);
std::string encode(const Node& node);
std::string encode(const Initializer& initializer);
std::string encode(const ValueInfo& value);
std::string encode(const Graph& graph);
std::string encode(const Model& model);

}  // namespace kiln::onnx::proto
