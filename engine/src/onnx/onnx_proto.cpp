#include "onnx/onnx_proto.h"

#include "core/protobuf_wire.h"

namespace kiln::onnx::proto {
namespace {

using protobuf::put_bytes;
using protobuf::put_float;
using protobuf::put_int64;

// Field numbers of onnx.proto (listed in onnx_proto.h).
namespace attribute_field {
constexpr int kName = 1, kF = 2, kI = 3, kInts = 8, kType = 20;
}
// AttributeProto.AttributeType
constexpr std::int64_t kAttributeFloat = 1, kAttributeInt = 2, kAttributeInts = 7;
namespace node_field {
constexpr int kInput = 1, kOutput = 2, kName = 3, kOpType = 4, kAttribute = 5;
}
namespace tensor_field {
constexpr int kDims = 1, kDataType = 2, kName = 8, kRawData = 9;
}
namespace graph_field {
constexpr int kNode = 1, kName = 2, kInitializer = 5, kInput = 11, kOutput = 12;
}
namespace model_field {
constexpr int kIrVersion = 1, kProducerName = 2, kProducerVersion = 3, kDocString = 6, kGraph = 7,
              kOpsetImport = 8, kMetadataProps = 14;
}
// ValueInfoProto {name = 1, type = 2}, TypeProto {tensor_type = 1}, TypeProto.Tensor
// {elem_type = 1, shape = 2}, TensorShapeProto {dim = 1}, Dimension {dim_value = 1,
// dim_param = 2}, OperatorSetIdProto {version = 2}, StringStringEntryProto {key = 1,
// value = 2}: every one a field 1 or 2, written inline below.

template <class Message>
void put_messages(std::string& out, int field, const std::vector<Message>& messages) {
  for (const Message& message : messages) put_bytes(out, field, encode(message));
}

void put_strings(std::string& out, int field, const std::vector<std::string>& strings) {
  for (const std::string& text : strings) put_bytes(out, field, text);
}

// Optional string fields are left out when empty, as protobuf does.
void put_string(std::string& out, int field, const std::string& text) {
  if (!text.empty()) put_bytes(out, field, text);
}

std::string encode_dimension(const Dimension& dimension) {
  std::string out;
  if (dimension.param.empty())
    put_int64(out, 1, dimension.value);
  else
    put_bytes(out, 2, dimension.param);
  return out;
}

}  // namespace

std::string encode(const Attribute& attribute) {
  std::string out;
  put_bytes(out, attribute_field::kName, attribute.name);
  if (const auto* number = std::get_if<float>(&attribute.value)) {
    put_float(out, attribute_field::kF, *number);
    put_int64(out, attribute_field::kType, kAttributeFloat);
  } else if (const auto* integer = std::get_if<std::int64_t>(&attribute.value)) {
    put_int64(out, attribute_field::kI, *integer);
    put_int64(out, attribute_field::kType, kAttributeInt);
  } else {
    for (const std::int64_t value : std::get<std::vector<std::int64_t>>(attribute.value))
      put_int64(out, attribute_field::kInts, value);
    put_int64(out, attribute_field::kType, kAttributeInts);
  }
  return out;
}

std::string encode(const Node& node) {
  std::string out;
  put_strings(out, node_field::kInput, node.inputs);
  put_strings(out, node_field::kOutput, node.outputs);
  put_string(out, node_field::kName, node.name);
  put_bytes(out, node_field::kOpType, node.op_type);
  put_messages(out, node_field::kAttribute, node.attributes);
  return out;
}

std::string encode(const Initializer& initializer) {
  std::string out;
  for (const std::int64_t dim : initializer.dims) put_int64(out, tensor_field::kDims, dim);
  put_int64(out, tensor_field::kDataType, kFloat);
  put_bytes(out, tensor_field::kName, initializer.name);
  put_bytes(out, tensor_field::kRawData, initializer.raw_data);
  return out;
}

std::string encode(const ValueInfo& value) {
  std::string shape;
  for (const Dimension& dimension : value.dims) put_bytes(shape, 1, encode_dimension(dimension));
  std::string tensor_type;
  put_int64(tensor_type, 1, kFloat);
  put_bytes(tensor_type, 2, shape);
  std::string type;
  put_bytes(type, 1, tensor_type);
  std::string out;
  put_bytes(out, 1, value.name);
  put_bytes(out, 2, type);
  return out;
}

std::string encode(const Graph& graph) {
  std::string out;
  put_messages(out, graph_field::kNode, graph.nodes);
  put_bytes(out, graph_field::kName, graph.name);
  put_messages(out, graph_field::kInitializer, graph.initializers);
  put_messages(out, graph_field::kInput, graph.inputs);
  put_messages(out, graph_field::kOutput, graph.outputs);
  return out;
}

std::string encode(const Model& model) {
  std::string out;
  put_int64(out, model_field::kIrVersion, model.ir_version);
  put_string(out, model_field::kProducerName, model.producer_name);
  put_string(out, model_field::kProducerVersion, model.producer_version);
  put_string(out, model_field::kDocString, model.doc_string);
  put_bytes(out, model_field::kGraph, encode(model.graph));
  std::string opset;
  put_int64(opset, 2, model.opset_version);  // domain "" (ai.onnx): left out
  put_bytes(out, model_field::kOpsetImport, opset);
  for (const auto& [key, value] : model.metadata) {
    std::string entry;
    put_bytes(entry, 1, key);
    put_bytes(entry, 2, value);
    put_bytes(out, model_field::kMetadataProps, entry);
  }
  return out;
}

}  // namespace kiln::onnx::proto
