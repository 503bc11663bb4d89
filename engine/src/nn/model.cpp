#include <kiln/error.h>

#include <fmt/format.h>

#include <set>

#include "nn/layer.h"

namespace kiln::nn {

using Json = nlohmann::json;

ForwardContext::ForwardContext() = default;
ForwardContext::~ForwardContext() = default;
ForwardContext::ForwardContext(ForwardContext&&) noexcept = default;
ForwardContext& ForwardContext::operator=(ForwardContext&&) noexcept = default;

Model::Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

namespace {

Shape input_shape_of(const Json& spec) {
  const auto it = spec.find("input");
  if (it == spec.end() || !it->is_array() || it->empty())
    throw ConfigError("model: 'input' must list the per-sample input shape, e.g. [1, 28, 28]");
  Shape shape;
  for (const auto& extent : *it) {
    if (!extent.is_number_integer() || extent.get<std::int64_t>() < 1)
      throw ConfigError("model: 'input' extents must be positive integers, got " + it->dump());
    shape.push_back(extent.get<std::int64_t>());
  }
  return shape;
}

void check_spec_keys(const Json& spec) {
  if (!spec.is_object()) throw ConfigError("model: expected a mapping with 'input' and 'layers'");
  for (const auto& [key, value] : spec.items())
    if (key != "input" && key != "layers" && key != "blocks")
      throw ConfigError(fmt::format("model: unknown key '{}'; keys: input, layers, blocks", key));
  if (spec.contains("blocks") && !spec["blocks"].is_object())
    throw ConfigError("model: 'blocks' must map block names to lists of layers");
}

}  // namespace

Model Model::build(const Json& spec, std::uint64_t seed, Device device) {
  check_spec_keys(spec);
  Model model;
  model.device_ = device;
  model.input_shape_ = input_shape_of(spec);
  LayerBuilder builder;
  builder.blocks = spec.contains("blocks") ? &spec["blocks"] : nullptr;
  builder.seed = seed;
  builder.device = device;
  model.root_ = builder.build_sequence(spec.value("layers", Json()), "layers", model.input_shape_);
  model.output_shape_ = model.root_->output_shape(model.input_shape_);
  model.spec_ = {{"input", model.input_shape_}, {"layers", model.root_->config()}};
  return model;
}

const Layer& Model::root_layer() const noexcept { return *root_; }

std::vector<Parameter*> Model::parameters() {
  std::vector<Parameter*> out;
  root_->collect_parameters(out);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Model::buffers() {
  std::vector<std::pair<std::string, Tensor*>> out;
  root_->collect_buffers(out);
  return out;
}

std::int64_t Model::parameter_count() {
  std::int64_t count = 0;
  for (const Parameter* p : parameters()) count += p->value.numel();
  return count;
}

std::string Model::summary() const {
  std::vector<std::string> lines = {
      fmt::format("{:<14} {:<14} {:<18} {}", "layer", "type", "output", "parameters"),
      fmt::format("{:<14} {:<14} {:<18}", "", "input", shape_string(input_shape_))};
  root_->describe("", input_shape_, lines);
  return fmt::format("{}", fmt::join(lines, "\n"));
}

Tensor Model::forward(const Tensor& x, const StepInfo& step, ForwardContext& context) {
  Shape expected = input_shape_;
  expected.insert(expected.begin(), x.rank() > 0 ? x.dim(0) : 0);
  if (x.shape() != expected)
    throw DataError(fmt::format("model input: expected {} (batch first), got {}",
                                shape_string(expected), shape_string(x.shape())));
  context.saved_.clear();
  context.saved_.push_back(std::make_unique<Saved>());
  context.training_ = step.mode == Mode::Train;
  return root_->forward(x, step, *context.saved_[0]);
}

Tensor Model::backward(ForwardContext& context, const Tensor& dy, bool input_grad) {
  if (context.saved_.empty() || !context.training_)
    throw InternalError("Model::backward needs the context of a training-mode forward pass");
  LayerDone done;
  std::vector<std::size_t> pending;
  std::set<const Parameter*> finished;
  if (hook_) {
    for (const auto& bucket : buckets_) pending.push_back(bucket.parameters.size());
    done = [&](Layer& layer) {
      std::vector<Parameter*> parameters;
      layer.collect_parameters(parameters);
      // Buckets are numbered from the last parameter: walk a layer's in reverse too.
      for (auto it = parameters.rbegin(); it != parameters.rend(); ++it) {
        Parameter* p = *it;
        if (!finished.insert(p).second) continue;
        const int bucket = bucket_of_.at(p);
        if (--pending[static_cast<std::size_t>(bucket)] == 0)
          hook_(buckets_[static_cast<std::size_t>(bucket)]);
      }
    };
  }
  Tensor dx = root_->backward(dy, *context.saved_[0], input_grad, done);
  context.saved_.clear();
  return input_grad ? dx : Tensor();
}

void Model::zero_grad() { root_->zero_grad(false); }

void Model::zero_grad_before_backward() { root_->zero_grad(true); }

void Model::set_gradient_hook(std::function<void(const GradientBucket&)> hook,
                              std::size_t bucket_bytes) {
  hook_ = std::move(hook);
  build_buckets(bucket_bytes);
}

void Model::build_buckets(std::size_t bucket_bytes) {
  // Backward produces gradients last layer first, so buckets fill in reverse order.
  buckets_.clear();
  bucket_of_.clear();
  std::vector<Parameter*> all = parameters();
  std::size_t bytes = 0;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (buckets_.empty() || bytes >= bucket_bytes) {
      buckets_.push_back({static_cast<int>(buckets_.size()), {}});
      bytes = 0;
    }
    buckets_.back().parameters.push_back(*it);
    bucket_of_[*it] = buckets_.back().index;
    bytes += (*it)->value.nbytes();
  }
}

}  // namespace kiln::nn
