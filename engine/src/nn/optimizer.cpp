// SGD and AdamW with torch.optim's update rules and torch's float32 arithmetic:
// scalar coefficients are computed in double (as Python floats are) and applied
// to float32 tensors as float, in the same order of operations, so that a kiln
// step matches a torch step to a few float ulps. The per-tensor loops are ops
// (ops/optim.h) with a twin per device.
#include <kiln/error.h>
#include <kiln/nn/optimizer.h>

#include <fmt/format.h>

#include <cmath>

#include "ops/optim.h"

namespace kiln::nn {

Optimizer::~Optimizer() = default;

namespace {

void check_non_negative(double value, const char* what) {
  if (!(value >= 0.0) || !std::isfinite(value))
    throw ConfigError(
        fmt::format("optimizer: {} must be a finite value >= 0, got {}", what, value));
}

// Per-parameter state tensors, created on the parameter's first step.
class StateTensors {
 public:
  Tensor& get(const std::string& prefix, const Parameter& p) {
    auto it = tensors_.find(prefix + p.name);
    if (it == tensors_.end())
      it = tensors_
               .emplace(prefix + p.name,
                        Tensor::zeros(p.value.shape(), DType::F32, p.value.device()))
               .first;
    if (it->second.shape() != p.value.shape())
      throw InternalError(
          fmt::format("optimizer: parameter '{}' is {} but its state is {}: one "
                      "optimizer serves one model",
                      p.name, shape_string(p.value.shape()), shape_string(it->second.shape())));
    return it->second;
  }
  const std::map<std::string, Tensor>& all() const { return tensors_; }
  void load(const std::string& prefix, const std::vector<Parameter*>& parameters,
            const std::map<std::string, Tensor>& saved) {
    for (const Parameter* p : parameters) {
      const auto it = saved.find(prefix + p->name);
      if (it == saved.end())
        throw DataError(
            fmt::format("checkpoint: optimizer state '{}' is missing", prefix + p->name));
      if (it->second.shape() != p->value.shape())
        throw DataError(fmt::format(
            "checkpoint: optimizer state '{}' has shape {}, the parameter {}", prefix + p->name,
            shape_string(it->second.shape()), shape_string(p->value.shape())));
      tensors_[prefix + p->name] = it->second.to(p->value.device());
    }
  }

 private:
  std::map<std::string, Tensor> tensors_;
};

class Sgd final : public Optimizer {
 public:
  explicit Sgd(const SgdOptions& options) : options_(options) {}

  void step(const std::vector<Parameter*>& parameters) override {
    const auto mu = static_cast<float>(options_.momentum);
    ops::SgdScalars s;
    s.lr = static_cast<float>(options_.lr);
    s.weight_decay = static_cast<float>(options_.weight_decay);
    s.momentum = options_.momentum != 0.0;
    s.nesterov = options_.nesterov;
    s.buffer_momentum = steps_ == 0 ? 0.0f : mu;  // torch sets b = d on the first step
    s.nesterov_momentum = mu;
    std::vector<ops::ParameterUpdate> updates;
    for (Parameter* p : parameters)
      updates.push_back({&p->value,
                         &p->grad,
                         {s.momentum ? &state_.get("sgd.momentum.", *p) : nullptr, nullptr}});
    ops::sgd_multi_step(s, updates);
    ++steps_;
  }
  void set_lr(double lr) override { options_.lr = lr; }
  double lr() const override { return options_.lr; }
  std::map<std::string, Tensor> state_tensors() const override { return state_.all(); }
  nlohmann::json state_scalars() const override { return {{"kind", "sgd"}, {"steps", steps_}}; }
  void load_state(const std::vector<Parameter*>& parameters,
                  const std::map<std::string, Tensor>& tensors,
                  const nlohmann::json& scalars) override {
    steps_ = scalars.at("steps").get<std::int64_t>();
    if (options_.momentum != 0.0 && steps_ > 0) state_.load("sgd.momentum.", parameters, tensors);
  }

 private:
  SgdOptions options_;
  std::int64_t steps_ = 0;
  StateTensors state_;
};

class AdamW final : public Optimizer {
 public:
  explicit AdamW(const AdamWOptions& options) : options_(options) {}

  void step(const std::vector<Parameter*>& parameters) override {
    ++steps_;
    const ops::AdamWScalars c = scalars();
    std::vector<ops::ParameterUpdate> updates;
    for (Parameter* p : parameters)
      updates.push_back(
          {&p->value, &p->grad, {&state_.get("adamw.m.", *p), &state_.get("adamw.v.", *p)}});
    ops::adamw_multi_step(c, updates);
  }
  void set_lr(double lr) override { options_.lr = lr; }
  double lr() const override { return options_.lr; }
  std::map<std::string, Tensor> state_tensors() const override { return state_.all(); }
  nlohmann::json state_scalars() const override { return {{"kind", "adamw"}, {"steps", steps_}}; }
  void load_state(const std::vector<Parameter*>& parameters,
                  const std::map<std::string, Tensor>& tensors,
                  const nlohmann::json& scalars) override {
    steps_ = scalars.at("steps").get<std::int64_t>();
    if (steps_ == 0) return;
    state_.load("adamw.m.", parameters, tensors);
    state_.load("adamw.v.", parameters, tensors);
  }

 private:
  ops::AdamWScalars scalars() const {
    const auto t = static_cast<double>(steps_);
    return {static_cast<float>(1.0 - options_.lr * options_.weight_decay),
            static_cast<float>(options_.beta1),
            static_cast<float>(options_.beta2),
            static_cast<float>(1.0 - options_.beta1),
            static_cast<float>(1.0 - options_.beta2),
            static_cast<float>(options_.lr / (1.0 - std::pow(options_.beta1, t))),
            static_cast<float>(std::sqrt(1.0 - std::pow(options_.beta2, t))),
            static_cast<float>(options_.eps)};
  }

  AdamWOptions options_;
  std::int64_t steps_ = 0;
  StateTensors state_;
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(const SgdOptions& options) {
  check_non_negative(options.lr, "SGD lr");
  check_non_negative(options.momentum, "SGD momentum");
  check_non_negative(options.weight_decay, "SGD weight_decay");
  if (options.nesterov && options.momentum == 0.0)
    throw ConfigError("optimizer: SGD nesterov needs a momentum > 0");
  return std::make_unique<Sgd>(options);
}

std::unique_ptr<Optimizer> make_adamw(const AdamWOptions& options) {
  check_non_negative(options.lr, "AdamW lr");
  check_non_negative(options.eps, "AdamW eps");
  check_non_negative(options.weight_decay, "AdamW weight_decay");
  for (const double beta : {options.beta1, options.beta2})
    if (!(beta >= 0.0 && beta < 1.0))
      throw ConfigError(fmt::format("optimizer: AdamW betas must lie in [0, 1), got {}", beta));
  return std::make_unique<AdamW>(options);
}

double grad_norm(const std::vector<Parameter*>& parameters) {
  if (parameters.empty()) return 0.0;
  Tensor total = Tensor::zeros({1}, DType::F32, parameters.front()->grad.device());
  for (const Parameter* p : parameters) ops::sum_squares(p->grad, total);
  return std::sqrt(static_cast<double>(total.to_vector()[0]));
}

void clip_grad_norm(const std::vector<Parameter*>& parameters, double max_norm, Tensor& norm_sum) {
  if (parameters.empty()) return;
  Tensor total = Tensor::zeros({1}, DType::F32, parameters.front()->grad.device());
  for (const Parameter* p : parameters) ops::sum_squares(p->grad, total);
  ops::add_norm(total, norm_sum);
  for (Parameter* p : parameters) ops::clip_by_norm(p->grad, total, static_cast<float>(max_norm));
}

double clip_grad_norm(const std::vector<Parameter*>& parameters, double max_norm) {
  if (parameters.empty()) return 0.0;
  Tensor norm = Tensor::zeros({1}, DType::F32, parameters.front()->grad.device());
  clip_grad_norm(parameters, max_norm, norm);
  return static_cast<double>(norm.to_vector()[0]);
}

}  // namespace kiln::nn
