// Mlp <-> safetensors. The file carries the spec as JSON in the metadata under
// "kiln.model", so that a model file is self-describing; load checks every tensor
// against that spec before allocating the model.
#include <kiln/error.h>
#include <kiln/nn/mlp.h>
#include <kiln/safetensors.h>

#include <cstring>
#include <set>
#include <string>

#include "nn/mlp_layout.h"

namespace kiln::nn {
namespace {

constexpr const char* kSpecKey = "kiln.model";

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

MlpSpec spec_of(const std::filesystem::path& path, const SafetensorsFile& file) {
  const auto it = file.metadata.find(kSpecKey);
  if (it == file.metadata.end())
    throw DataError(path.string() + ": no \"" + kSpecKey +
                    "\" entry in the metadata; not a kiln MLP file");
  try {
    return MlpSpec::from_json(nlohmann::json::parse(it->second));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path.string() + ": metadata \"" + kSpecKey +
                    "\" is not valid JSON: " + e.what());
  } catch (const DataError& e) {
    throw DataError(path.string() + ": " + e.what());
  }
}

const StoredTensor& expect_tensor(const std::filesystem::path& path, const SafetensorsFile& file,
                                  const std::string& name, const std::vector<std::int64_t>& shape) {
  const StoredTensor* tensor = file.find(name);
  if (tensor == nullptr) throw DataError(path.string() + ": missing tensor \"" + name + "\"");
  if (tensor->dtype != DType::F32)
    throw DataError(path.string() + ": tensor \"" + name + "\" has dtype " +
                    std::string(safetensors_name(tensor->dtype)) + ", expected F32");
  if (tensor->shape != shape)
    throw DataError(path.string() + ": tensor \"" + name + "\" has shape " +
                    shape_text(tensor->shape) + ", the model spec needs " + shape_text(shape));
  return *tensor;
}

}  // namespace

void Mlp::save(const std::filesystem::path& path,
               const std::map<std::string, std::string>& metadata) const {
  std::vector<TensorView> views;
  views.reserve(parameters_.size());
  for (const Parameter& p : parameters_)
    views.push_back({p.name, DType::F32, p.shape, p.value.data()});
  std::map<std::string, std::string> all_metadata = metadata;
  all_metadata[kSpecKey] = spec_.to_json().dump();  // the model's own spec wins over the caller's
  write_safetensors(path, views, all_metadata);
}

Mlp Mlp::load(const std::filesystem::path& path) {
  const SafetensorsFile file = read_safetensors(path);
  const MlpSpec spec = spec_of(path, file);
  std::vector<const StoredTensor*> stored;
  std::set<std::string> expected;
  for (const LayerShape& layer : layer_shapes(spec)) {
    stored.push_back(&expect_tensor(path, file, layer.weight_name, {layer.out, layer.in}));
    stored.push_back(&expect_tensor(path, file, layer.bias_name, {layer.out}));
    expected.insert(layer.weight_name);
    expected.insert(layer.bias_name);
  }
  for (const StoredTensor& tensor : file.tensors)
    if (!expected.contains(tensor.name))
      throw DataError(path.string() + ": unexpected tensor \"" + tensor.name +
                      "\" for the model spec " + spec.to_json().dump());

  // Every shape is now backed by bytes in the file, so the allocation is bounded.
  Mlp model(spec, 0);
  for (std::size_t i = 0; i < stored.size(); ++i) {
    Parameter& p = model.parameters_[i];
    std::memcpy(p.value.data(), stored[i]->bytes.data(), stored[i]->bytes.size());
  }
  return model;
}

}  // namespace kiln::nn
