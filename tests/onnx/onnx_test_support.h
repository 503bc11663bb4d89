// Helpers of the ONNX tests: a protobuf reader for checking what the exporter
// wrote (independent of kiln's encoder), .npy files for the onnxruntime script,
// and a model that holds every layer type the training core has.
#pragma once

#include <kiln/nn/model.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/support.h"

namespace kiln::test {

// One field of a protobuf message: varints and fixed-width numbers in `number`,
// length-delimited fields in `bytes`.
struct WireField {
  int field = 0;
  int wire = 0;
  std::uint64_t number = 0;
  std::string bytes;
};

// The fields of `message` in order; throws on anything cut short.
inline std::vector<WireField> wire_fields(std::string_view message) {
  std::size_t at = 0;
  auto varint = [&] {
    std::uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      if (at >= message.size() || shift > 63) throw std::runtime_error("bad varint");
      const auto byte = static_cast<unsigned char>(message[at++]);
      value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
  };
  auto fixed = [&](int bytes) {
    if (at + static_cast<std::size_t>(bytes) > message.size())
      throw std::runtime_error("cut short");
    std::uint64_t value = 0;
    for (int i = 0; i < bytes; ++i)
      value |= static_cast<std::uint64_t>(static_cast<unsigned char>(message[at++])) << (8 * i);
    return value;
  };
  std::vector<WireField> fields;
  while (at < message.size()) {
    const std::uint64_t key = varint();
    WireField field{static_cast<int>(key >> 3), static_cast<int>(key & 7), 0, {}};
    if (field.wire == 0) {
      field.number = varint();
    } else if (field.wire == 1) {
      field.number = fixed(8);
    } else if (field.wire == 5) {
      field.number = fixed(4);
    } else if (field.wire == 2) {
      const std::uint64_t length = varint();
      if (at + length > message.size()) throw std::runtime_error("cut short");
      field.bytes = std::string(message.substr(at, length));
      at += length;
    } else {
      throw std::runtime_error("unknown wire type " + std::to_string(field.wire));
    }
    fields.push_back(std::move(field));
  }
  return fields;
}

// Every field `number` of `message`: the bytes of length-delimited ones, the
// values of the others.
inline std::vector<std::string> wire_strings(std::string_view message, int number) {
  std::vector<std::string> out;
  for (const WireField& field : wire_fields(message))
    if (field.field == number) out.push_back(field.bytes);
  return out;
}
inline std::vector<std::uint64_t> wire_numbers(std::string_view message, int number) {
  std::vector<std::uint64_t> out;
  for (const WireField& field : wire_fields(message))
    if (field.field == number) out.push_back(field.number);
  return out;
}

// numpy's .npy 1.0: magic, version, header length, the dict padded to 64 bytes.
inline void write_npy(const std::filesystem::path& file, const std::string& descr,
                      const std::vector<std::int64_t>& shape, const void* data, std::size_t bytes) {
  std::string dims;
  for (const std::int64_t extent : shape) dims += std::to_string(extent) + ", ";
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string content = std::string("\x93NUMPY\x01\x00", 8);
  content.push_back(static_cast<char>(header.size() & 0xFF));
  content.push_back(static_cast<char>(header.size() >> 8));
  content += header;
  content.append(static_cast<const char*>(data), bytes);
  write_text(file, content);
}
inline void write_npy(const std::filesystem::path& file, const Tensor& tensor) {
  write_npy(file, "<f4", tensor.shape(), tensor.raw(), tensor.nbytes());
}

// A model of every layer type, per-sample input [3, 8, 8], 5 outputs: convolutions
// with and without bias, batch norm, ReLU, GELU, SiLU and LeakyReLU, a residual block, a named
// block, max and average pooling with padding, layer norm over image rows and over
// features, dropout, global average pooling, flatten, linear with and without bias.
inline nlohmann::json all_layers_spec() {
  return nlohmann::json::parse(R"({
    "input": [3, 8, 8],
    "blocks": {"down": [{"maxpool2d": {"kernel": 3, "stride": 2, "padding": 1}},
                        {"conv2d": {"out": 6, "kernel": 1}}]},
    "layers": [
      {"conv2d": {"out": 4, "kernel": 3, "padding": 1}},
      {"batchnorm2d": {}},
      "relu",
      {"residual": [{"conv2d": {"out": 4, "kernel": 3, "padding": 1, "bias": false}},
                    {"batchnorm2d": {"eps": 0.001}}, "gelu"]},
      {"block": "down"},
      {"avgpool2d": {"kernel": 3, "stride": 1, "padding": 1}},
      {"layernorm": {}},
      {"dropout": {"p": 0.3}},
      "global_avgpool",
      "flatten",
      {"linear": {"out": 8, "bias": false}},
      "gelu",
      {"layernorm": {"eps": 0.0001}},
      {"dropout": {"p": 0.5}},
      {"residual": [{"linear": {"out": 8}}, "relu"]},
      "silu",
      {"leaky_relu": {"negative_slope": 0.2}},
      {"linear": {"out": 5}}
    ]})");
}

// all_layers_spec() with its parameters moved off their initial values (norm
// scales and shifts would otherwise be 1 and 0) and batch-norm running statistics
// such as training leaves, so that every tensor changes the output.
inline nn::Model all_layers_model(std::uint32_t seed = 7) {
  nn::Model model = nn::Model::build(all_layers_spec(), seed);
  std::mt19937 random(seed);
  std::uniform_real_distribution<float> shift(-0.2f, 0.2f), mean(-0.3f, 0.3f), var(0.5f, 1.5f);
  for (nn::Parameter* parameter : model.parameters()) {
    float* values = parameter->value.data<float>();
    for (std::int64_t i = 0; i < parameter->value.numel(); ++i) values[i] += shift(random);
  }
  for (auto& [name, tensor] : model.buffers()) {
    float* values = tensor->data<float>();
    const bool variance = name.ends_with("running_var");
    for (std::int64_t i = 0; i < tensor->numel(); ++i)
      values[i] = variance ? var(random) : mean(random);
  }
  return model;
}

// Uniform [-1, 1) float32 of this shape.
inline Tensor random_tensor(const Shape& shape, std::uint32_t seed) {
  Tensor tensor = Tensor::empty(shape);
  std::mt19937 random(seed);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  float* values = tensor.data<float>();
  for (std::int64_t i = 0; i < tensor.numel(); ++i) values[i] = value(random);
  return tensor;
}

}  // namespace kiln::test
