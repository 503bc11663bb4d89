#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/onnx.h>
#include <kiln/train/tabular.h>
#include <kiln/version.h>

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "onnx/model_graph.h"

namespace kiln::onnx {

namespace {

// Fitted tabular impute/scale in the weights' kiln.preprocess (train/tabular.h)
// becomes the graph's first nodes: the exported model takes raw features.
void add_tabular_preprocess(ModelParts& parts,
                            const std::vector<std::pair<std::string, std::string>>& metadata) {
  for (const auto& [key, text] : metadata) {
    if (key != "kiln.preprocess") continue;
    const nlohmann::json preprocess = nlohmann::json::parse(text, nullptr, false);
    if (!train::is_tabular(preprocess) || parts.input.size() != 1) return;
    // The raw columns: one-hot encoding makes the model's input wider than them.
    const auto columns =
        static_cast<std::int64_t>(preprocess.value("fitted", nlohmann::json::object())
                                      .value("fill", nlohmann::json::array())
                                      .size());
    const train::TabularTransform transform = train::tabular_transform(preprocess, columns);
    if (transform.output_columns() != parts.input.front())
      throw ConfigError(fmt::format(
          "onnx export: kiln.preprocess makes {} features of {} columns; the model takes {}",
          transform.output_columns(), columns, parts.input.front()));
    const auto vector = [](const std::vector<float>& values) {
      Tensor tensor = Tensor::empty({static_cast<std::int64_t>(values.size())});
      std::copy(values.begin(), values.end(), tensor.data<float>());
      return tensor;
    };
    if (!transform.numeric.empty()) {
      parts.tensors[std::string(kPreprocessFill)] = vector(transform.fill);
      parts.tensors[std::string(kPreprocessCenter)] = vector(transform.center);
      parts.tensors[std::string(kPreprocessScale)] = vector(transform.scale);
    }
    if (transform.one_hot.empty()) return;
    parts.input = {columns};
    parts.numeric_columns = transform.numeric;
    for (std::size_t i = 0; i < transform.one_hot.size(); ++i) {
      const train::OneHot& block = transform.one_hot[i];
      std::vector<float> codes(static_cast<std::size_t>(block.width));
      for (std::size_t code = 0; code < codes.size(); ++code)
        codes[code] = static_cast<float>(code);
      parts.tensors[one_hot_codes_name(i)] = vector(codes);
      parts.one_hot.emplace_back(block.column, block.width);
    }
  }
}

}  // namespace

ExportedModel export_model(nn::Model& model, const ExportOptions& options) {
  ModelParts parts{model.input_shape(), model.output_shape(), {}};
  auto add = [&](const std::string& name, const Tensor& tensor) {
    parts.tensors[name] = tensor.device().is_cpu() ? tensor : tensor.to(Device::cpu());
  };
  for (const nn::Parameter* parameter : model.parameters()) add(parameter->name, parameter->value);
  for (const auto& [name, tensor] : model.buffers()) add(name, *tensor);
  add_tabular_preprocess(parts, options.metadata);

  proto::Model onnx_model;
  onnx_model.ir_version = kIrVersion;
  onnx_model.opset_version = kOpsetVersion;
  onnx_model.producer_name = "kiln";
  onnx_model.producer_version = KILN_VERSION;
  onnx_model.doc_string =
      "A kiln model in eval mode: batch norm uses its running statistics, dropout is the "
      "identity. Output: logits.";
  onnx_model.metadata = options.metadata;
  onnx_model.metadata.emplace_back("kiln.model", model.spec().dump());
  onnx_model.graph = model_graph(model.root_layer(), parts, options.graph_name);

  ExportedModel exported;
  exported.nodes = onnx_model.graph.nodes.size();
  exported.initializers = onnx_model.graph.initializers.size();
  exported.bytes = proto::encode(onnx_model);
  // Protobuf parsers refuse messages of 2 GiB and more; larger weights would need
  // ONNX's external-data files, which kiln does not write.
  if (exported.bytes.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw ConfigError(fmt::format(
        "onnx export: the model takes {} bytes, over protobuf's 2 GiB limit for one ONNX file",
        exported.bytes.size()));
  return exported;
}

ExportedModel write_model(const std::filesystem::path& file, nn::Model& model,
                          const ExportOptions& options) {
  ExportedModel exported = export_model(model, options);
  write_file_atomic(file, exported.bytes);
  return exported;
}

}  // namespace kiln::onnx
