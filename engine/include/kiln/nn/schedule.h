// Learning-rate schedules, as functions of the optimizer step, with the formulas of
// torch.optim.lr_scheduler:
//   constant   lr
//   step       lr * gamma^floor(t / step_size)                       (StepLR)
//   cosine     min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2         (CosineAnnealingLR, T_max = T)
//   onecycle   cosine from lr / div up to lr over pct_start T steps, then down to
//              lr / (div * final_div) at T - 1                        (OneCycleLR, anneal cos)
// and an optional linear warmup that multiplies the first `warmup` steps by
// (t + 1) / warmup. t counts optimizer steps from 0; T is the run's total.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace kiln::nn {

struct Schedule {
  std::string kind = "constant";  // constant, step, cosine, onecycle
  double lr = 1e-3;
  std::int64_t total_steps = 1;
  std::int64_t warmup_steps = 0;
  std::int64_t step_size = 1;  // step
  double gamma = 0.1;          // step
  double min_lr = 0.0;         // cosine
  double pct_start = 0.3;      // onecycle
  double div_factor = 25.0;    // onecycle
  double final_div_factor = 1e4;  // onecycle

  // ConfigError naming the setting for an unknown kind or an out-of-range value.
  void check() const;
  double at(std::int64_t step) const;
};

}  // namespace kiln::nn
