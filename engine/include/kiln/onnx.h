// ONNX export of kiln models (docs/formats.md, "Models: ONNX"): the model in eval
// mode (batch norm with its running statistics, dropout the identity) as an ONNX
// ModelProto that onnxruntime and other ONNX readers run. One float32 input named
// "input", [batch, input shape...], and one output "logits", [batch, output
// shape...], with a symbolic batch axis; the weights are float32 initializers named
// as in the model's safetensors file. Opset 17 of the default domain, IR version 8.
#pragma once

#include <kiln/nn/model.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace kiln::onnx {

inline constexpr std::int64_t kIrVersion = 8;
// LayerNormalization entered the default domain in opset 17.
inline constexpr std::int64_t kOpsetVersion = 17;
inline constexpr const char* kInputName = "input";
inline constexpr const char* kOutputName = "logits";

struct ExportOptions {
  std::string graph_name = "kiln-model";
  // ModelProto.metadata_props, e.g. {"kiln.model_name", "fashion-mnist-mlp"}.
  std::vector<std::pair<std::string, std::string>> metadata;
};

struct ExportedModel {
  std::string bytes;  // the serialized ModelProto
  std::size_t nodes = 0;
  std::size_t initializers = 0;
};

// ConfigError naming the layer ("onnx export: layers[4] (attention): ...") for a
// layer type with no ONNX form, and for a model over protobuf's 2 GiB message
// limit. The model's spec lists every layer type the training core has.
ExportedModel export_model(nn::Model& model, const ExportOptions& options = {});

// export_model, written atomically to `file` (parent directories created).
ExportedModel write_model(const std::filesystem::path& file, nn::Model& model,
                          const ExportOptions& options = {});

}  // namespace kiln::onnx
