// Model files: safetensors with every parameter and buffer under its name and the
// model's spec as JSON in the metadata ("kiln.model"), so a file alone rebuilds
// the model.
#include <kiln/error.h>
#include <kiln/safetensors.h>

#include <fmt/format.h>

#include <cstring>
#include <set>

#include "core/stored_json.h"
#include "nn/layer.h"

namespace kiln::nn {

void Model::save(const std::filesystem::path& path,
                 const std::map<std::string, std::string>& metadata) const {
  auto& self = const_cast<Model&>(*this);
  std::vector<Tensor> host;  // keeps CPU copies alive until written
  std::vector<TensorView> views;
  auto add = [&](const std::string& name, const Tensor& tensor) {
    host.push_back(tensor.device().is_cpu() ? tensor : tensor.to(Device::cpu()));
    views.push_back({name, DType::F32, tensor.shape(), nullptr});
  };
  for (const Parameter* p : self.parameters()) add(p->name, p->value);
  for (const auto& [name, tensor] : self.buffers()) add(name, *tensor);
  for (std::size_t i = 0; i < views.size(); ++i) views[i].data = host[i].raw();
  std::map<std::string, std::string> all = metadata;
  all["kiln.model"] = spec_.dump();
  write_safetensors(path, views, all);
}

Model Model::load(const std::filesystem::path& path, Device device,
                  std::map<std::string, std::string>* metadata) {
  const SafetensorsFile file = read_safetensors(path);
  if (metadata != nullptr) *metadata = file.metadata;
  const auto spec_text = file.metadata.find("kiln.model");
  if (spec_text == file.metadata.end())
    throw DataError(
        fmt::format("{}: not a kiln model (no kiln.model in the metadata)", path.string()));
  const nlohmann::json spec =
      parse_stored_json(spec_text->second, fmt::format("{}: kiln.model", path.string()));
  Model model;
  try {
    model = build(spec, 0, device);
  } catch (const ConfigError& e) {
    throw DataError(
        fmt::format("{}: kiln.model does not describe a model: {}", path.string(), e.what()));
  }
  auto load_tensor = [&](const std::string& name, Tensor& target) {
    const StoredTensor* stored = file.find(name);
    if (stored == nullptr)
      throw DataError(fmt::format("{}: tensor '{}' is missing", path.string(), name));
    if (stored->dtype != DType::F32 || stored->shape != target.shape())
      throw DataError(fmt::format("{}: tensor '{}' is {} {}, the model needs f32 {}", path.string(),
                                  name, name_of(stored->dtype), shape_string(stored->shape),
                                  shape_string(target.shape())));
    Tensor host = Tensor::empty(target.shape());
    std::memcpy(host.raw(), stored->bytes.data(), host.nbytes());
    target.copy_from(host.device() == target.device() ? host : host.to(target.device()));
  };
  std::set<std::string> expected;
  for (Parameter* p : model.parameters()) {
    load_tensor(p->name, p->value);
    expected.insert(p->name);
  }
  for (auto& [name, tensor] : model.buffers()) {
    load_tensor(name, *tensor);
    expected.insert(name);
  }
  for (const StoredTensor& tensor : file.tensors)
    if (!expected.contains(tensor.name))
      throw DataError(fmt::format("{}: tensor '{}' is not part of the model its spec describes",
                                  path.string(), tensor.name));
  return model;
}

}  // namespace kiln::nn
