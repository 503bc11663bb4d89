#include "train/checkpoint.h"

#include "core/stored_json.h"

#include <kiln/error.h>
#include <kiln/safetensors.h>

#include <fmt/format.h>

#include <cstring>

namespace kiln::train {
namespace {

constexpr const char* kFormat = "kiln-checkpoint-1";

Tensor to_host(const Tensor& tensor) {
  return tensor.device().is_cpu() ? tensor : tensor.to(Device::cpu());
}

bool is_count(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number_integer() && it->get<std::int64_t>() >= 0;
}

// The metadata's shape, checked before anything is read from it: a file anyone can
// edit must give a DataError, not an exception from the JSON library.
void check_meta(const nlohmann::json& meta, const nlohmann::json& model_spec,
                const std::filesystem::path& file) {
  if (!meta.is_object() || meta.value("format", nlohmann::json()) != kFormat ||
      meta.value("model", nlohmann::json()) != model_spec)
    throw DataError(
        fmt::format("{}: the checkpoint is for another model or format", file.string()));
  for (const char* key : {"step", "epoch", "batch"})
    if (!is_count(meta, key))
      throw DataError(fmt::format("{}: kiln.checkpoint: '{}' must be a non-negative integer",
                                  file.string(), key));
  const auto optimizer = meta.find("optimizer");
  if (optimizer == meta.end() || !optimizer->is_object() || !is_count(*optimizer, "steps"))
    throw DataError(
        fmt::format("{}: kiln.checkpoint: 'optimizer' must hold 'steps', a non-negative integer",
                    file.string()));
}

}  // namespace

void save_checkpoint(const std::filesystem::path& file, nn::Model& model,
                     const nn::Optimizer& optimizer, const Position& position) {
  std::vector<Tensor> host;
  std::vector<TensorView> views;
  auto add = [&](const std::string& name, const Tensor& tensor) {
    host.push_back(to_host(tensor));
    views.push_back({name, DType::F32, tensor.shape(), nullptr});
  };
  for (const nn::Parameter* p : model.parameters()) add("model/" + p->name, p->value);
  for (const auto& [name, tensor] : model.buffers()) add("buffer/" + name, *tensor);
  for (const auto& [name, tensor] : optimizer.state_tensors()) add("optimizer/" + name, tensor);
  for (std::size_t i = 0; i < views.size(); ++i) views[i].data = host[i].raw();
  const nlohmann::json meta = {{"format", kFormat},
                               {"step", position.step},
                               {"epoch", position.epoch},
                               {"batch", position.batch},
                               {"optimizer", optimizer.state_scalars()},
                               {"model", model.spec()}};
  write_safetensors(file, views, {{"kiln.checkpoint", meta.dump()}});
}

std::optional<Position> load_checkpoint(const std::filesystem::path& file, nn::Model& model,
                                        nn::Optimizer& optimizer) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return std::nullopt;
  const SafetensorsFile stored = read_safetensors(file);
  const auto meta_text = stored.metadata.find("kiln.checkpoint");
  if (meta_text == stored.metadata.end())
    throw DataError(fmt::format("{}: not a kiln checkpoint (no kiln.checkpoint in the metadata)",
                                file.string()));
  const nlohmann::json meta =
      parse_stored_json(meta_text->second, fmt::format("{}: kiln.checkpoint", file.string()));
  check_meta(meta, model.spec(), file);
  auto read = [&](const std::string& name, const Shape& shape) {
    const StoredTensor* tensor = stored.find(name);
    if (tensor == nullptr || tensor->dtype != DType::F32 || tensor->shape != shape)
      throw DataError(
          fmt::format("{}: tensor '{}' is missing or has another shape", file.string(), name));
    Tensor host = Tensor::empty(shape);
    std::memcpy(host.raw(), tensor->bytes.data(), host.nbytes());
    return host;
  };
  for (nn::Parameter* p : model.parameters())
    p->value.copy_from(read("model/" + p->name, p->value.shape()));
  for (auto& [name, tensor] : model.buffers())
    tensor->copy_from(read("buffer/" + name, tensor->shape()));
  std::map<std::string, Tensor> state;
  for (const StoredTensor& tensor : stored.tensors)
    if (tensor.name.starts_with("optimizer/"))
      state[tensor.name.substr(10)] = read(tensor.name, tensor.shape);
  try {
    optimizer.load_state(model.parameters(), state, meta.at("optimizer"));
  } catch (const DataError& e) {
    rethrow_with_context(e, file.string() + ": ");
  }
  return Position{meta.at("step").get<std::int64_t>(), meta.at("epoch").get<std::int64_t>(),
                  meta.at("batch").get<std::int64_t>()};
}

}  // namespace kiln::train
