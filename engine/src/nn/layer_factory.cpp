// Layers from their spec entries: the one list of layer types (each declared next
// to its class in nn/layers_*.cpp), and blocks and residuals, which are built here
// from lists of layers.
#include <kiln/error.h>
#include <kiln/nn/rng.h>
#include <kiln/pipeline.h>

#include <fmt/format.h>

#include <algorithm>

#include "nn/layer.h"

namespace kiln::nn {

// The layer types, each defined beside its class (nn/layers_*.cpp).
extern const LayerType kLinearLayer;
extern const LayerType kConv2dLayer;
extern const LayerType kMaxPool2dLayer;
extern const LayerType kAvgPool2dLayer;
extern const LayerType kGlobalAvgPoolLayer;
extern const LayerType kBatchNorm2dLayer;
extern const LayerType kLayerNormLayer;
extern const LayerType kReluLayer;
extern const LayerType kGeluLayer;
extern const LayerType kSiluLayer;
extern const LayerType kLeakyReluLayer;
extern const LayerType kDropoutLayer;
extern const LayerType kFlattenLayer;

namespace {

using Json = nlohmann::json;

// Every layer type a spec may name, besides "block" and "residual".
constexpr const LayerType* kLayerTypes[] = {
    &kLinearLayer,         // layers_dense.cpp
    &kConv2dLayer,         // layers_conv.cpp
    &kMaxPool2dLayer,      // layers_conv.cpp
    &kAvgPool2dLayer,      // layers_conv.cpp
    &kGlobalAvgPoolLayer,  // layers_conv.cpp
    &kBatchNorm2dLayer,    // layers_norm.cpp
    &kLayerNormLayer,      // layers_norm.cpp
    &kReluLayer,           // layers_activation.cpp
    &kGeluLayer,           // layers_activation.cpp
    &kSiluLayer,           // layers_activation.cpp
    &kLeakyReluLayer,      // layers_activation.cpp
    &kDropoutLayer,        // layers_dense.cpp
    &kFlattenLayer,        // layers_dense.cpp
};

std::vector<std::string> kind_names() {
  std::vector<std::string> names = {"residual", "block"};
  for (const LayerType* type : kLayerTypes) names.emplace_back(type->name);
  std::sort(names.begin(), names.end());
  return names;
}

std::string describe_json(const Json& value) {
  const std::string text = value.dump();
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

}  // namespace

void spec_error(const std::string& where, const std::string& type, const std::string& problem) {
  throw ConfigError(fmt::format("{} ({}): {}", where, type, problem));
}

LayerSettings::LayerSettings(const Json& settings, std::string where, std::string type)
    : settings_(settings.is_null() ? Json::object() : settings),
      where_(std::move(where)),
      type_(std::move(type)) {
  if (!settings_.is_object())
    spec_error(where_, type_, "settings must be a mapping, got " + describe_json(settings));
}

const Json& LayerSettings::value(const std::string& key) {
  known_.push_back(key);
  static const Json kMissing;
  const auto it = settings_.find(key);
  return it == settings_.end() ? kMissing : *it;
}

std::int64_t LayerSettings::integer(const std::string& key, std::int64_t fallback,
                                    std::int64_t minimum) {
  const Json& v = value(key);
  if (v.is_null()) return fallback;
  if (!v.is_number_integer())
    spec_error(where_, type_, fmt::format("{} must be an integer, got {}", key, describe_json(v)));
  const auto number = v.get<std::int64_t>();
  if (number < minimum)
    spec_error(where_, type_, fmt::format("{} must be >= {}, got {}", key, minimum, number));
  return number;
}

std::int64_t LayerSettings::required_integer(const std::string& key, std::int64_t minimum) {
  if (!settings_.contains(key)) spec_error(where_, type_, fmt::format("missing '{}'", key));
  return integer(key, 0, minimum);
}

double LayerSettings::number(const std::string& key, double fallback, double minimum,
                             double maximum) {
  const Json& v = value(key);
  if (v.is_null()) return fallback;
  if (!v.is_number())
    spec_error(where_, type_, fmt::format("{} must be a number, got {}", key, describe_json(v)));
  const double number = v.get<double>();
  if (!(number >= minimum && number <= maximum))
    spec_error(where_, type_,
               fmt::format("{} must lie in [{}, {}], got {}", key, minimum, maximum, number));
  return number;
}

bool LayerSettings::flag(const std::string& key, bool fallback) {
  const Json& v = value(key);
  if (v.is_null()) return fallback;
  if (!v.is_boolean())
    spec_error(where_, type_,
               fmt::format("{} must be true or false, got {}", key, describe_json(v)));
  return v.get<bool>();
}

void LayerSettings::finish() const {
  for (const auto& [key, v] : settings_.items())
    if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
      const std::string nearest = nearest_name(key, known_);
      spec_error(where_, type_,
                 fmt::format("unknown setting '{}'{}; settings: {}", key,
                             nearest.empty() ? "" : " (did you mean '" + nearest + "'?)",
                             known_.empty() ? "none" : fmt::format("{}", fmt::join(known_, ", "))));
    }
}

Tensor LayerBuilder::uniform(const Shape& shape, float bound) {
  Tensor host = Tensor::empty(shape);
  float* values = host.data<float>();
  for (std::int64_t i = 0; i < host.numel(); ++i)
    values[i] =
        (2.0f * uniform01(seed, RngStream::Init, init_offset + static_cast<std::uint64_t>(i)) -
         1.0f) *
        bound;
  init_offset += static_cast<std::uint64_t>(host.numel());
  return host.to(device);
}

Tensor LayerBuilder::constant(const Shape& shape, float value) {
  return Tensor::full(shape, value, device);
}

std::unique_ptr<Layer> LayerBuilder::build_sequence(const Json& list, const std::string& where,
                                                    const Shape& input) {
  if (!list.is_array() || list.empty())
    throw ConfigError(
        fmt::format("{}: expected a non-empty list of layers, got {}", where, describe_json(list)));
  if (depth >= kMaxLayerDepth)
    throw ConfigError(
        fmt::format("{}: layers nest more than {} levels deep", where, kMaxLayerDepth));
  ++depth;
  std::vector<std::unique_ptr<Layer>> layers;
  std::vector<Shape> inputs;
  Shape shape = input;
  const std::string outer = prefix;
  for (std::size_t i = 0; i < list.size(); ++i) {
    inputs.push_back(shape);
    prefix = fmt::format("{}{}.", outer, i);
    layers.push_back(build(list[i], fmt::format("{}[{}]", where, i), shape));
    shape = layers.back()->output_shape(shape);
  }
  prefix = outer;
  --depth;
  return make_sequential(std::move(layers), std::move(inputs), "sequential");
}

std::unique_ptr<Layer> LayerBuilder::build(const Json& entry, const std::string& where,
                                           const Shape& input) {
  // A list is a block written inline: that is how a saved spec (Model::spec) keeps
  // a named block, so that a model file needs no `blocks` table to load.
  if (entry.is_array()) return build_sequence(entry, where, input);
  std::string name;
  Json settings;
  if (entry.is_string()) {
    name = entry.get<std::string>();
  } else if (entry.is_object() && entry.size() == 1) {
    name = entry.begin().key();
    settings = entry.begin().value();
  } else {
    throw ConfigError(
        fmt::format("{}: a layer is a name (\"relu\"), a one-key mapping "
                    "({{linear: {{out: 10}}}}) or a list of layers, got {}",
                    where, describe_json(entry)));
  }
  if (name == "block" || name == "residual") {
    // A block is a named list of layers; a residual's body is a list or a block.
    const bool named = name == "block" || settings.is_string() ||
                       (settings.is_object() && settings.contains("block"));
    const Json* body = &settings;
    if (named) {
      const Json& reference = settings.is_object() ? settings.at("block") : settings;
      if (!reference.is_string())
        throw ConfigError(fmt::format("{}: a block is named by a string, got {}", where,
                                      describe_json(reference)));
      const std::string block = reference.get<std::string>();
      if (blocks == nullptr || !blocks->contains(block))
        throw ConfigError(
            fmt::format("{}: no block named '{}' in the model's blocks", where, block));
      if (++block_depth > 16)
        throw ConfigError(
            fmt::format("{}: blocks nest more than 16 deep (does a block use itself?)", where));
      body = &blocks->at(block);
    }
    // A block's layers sit under its index ("layers.3.0."), a residual's under "body.".
    const std::string outer = prefix;
    if (name == "residual") prefix += "body.";
    auto sequence = build_sequence(*body, where + "." + name, input);
    prefix = outer;
    if (named) --block_depth;
    if (name == "block") return sequence;
    return make_residual(std::move(sequence), input, where);
  }
  for (const LayerType* type : kLayerTypes) {
    if (name != type->name) continue;
    if (*type->settings == '\0' && !settings.is_null() &&
        !(settings.is_object() && settings.empty()))
      spec_error(where, name, "takes no settings");
    LayerSettings layer_settings(settings, where, name);
    return type->build(layer_settings, *this, input, where);
  }
  const std::string nearest = nearest_name(name, kind_names());
  throw ConfigError(fmt::format("{}: unknown layer type '{}'{}; types: {}", where, name,
                                nearest.empty() ? "" : " (did you mean '" + nearest + "'?)",
                                fmt::join(kind_names(), ", ")));
}

}  // namespace kiln::nn
