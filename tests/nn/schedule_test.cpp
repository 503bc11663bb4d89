// Learning-rate schedules against hand-computed points and against
// torch.optim.lr_scheduler, stepped once per optimizer step.
#include <kiln/error.h>
#include <kiln/nn/schedule.h>

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <vector>

#include "formats/python_check.h"

namespace kiln::nn {
namespace {

constexpr double kPi = 3.14159265358979323846;

Schedule schedule(const std::string& kind, double lr, std::int64_t total) {
  Schedule s;
  s.kind = kind;
  s.lr = lr;
  s.total_steps = total;
  return s;
}

TEST(Schedule, ConstantAndStepByHand) {
  Schedule constant = schedule("constant", 0.3, 10);
  EXPECT_EQ(constant.at(0), 0.3);
  EXPECT_EQ(constant.at(9), 0.3);
  Schedule step = schedule("step", 0.1, 100);
  step.step_size = 10;
  step.gamma = 0.5;
  EXPECT_DOUBLE_EQ(step.at(0), 0.1);
  EXPECT_DOUBLE_EQ(step.at(9), 0.1);
  EXPECT_DOUBLE_EQ(step.at(10), 0.05);
  EXPECT_DOUBLE_EQ(step.at(25), 0.025);
}

TEST(Schedule, CosineByHand) {
  Schedule cosine = schedule("cosine", 0.1, 100);
  cosine.min_lr = 0.01;
  EXPECT_DOUBLE_EQ(cosine.at(0), 0.1);
  EXPECT_NEAR(cosine.at(50), 0.055, 1e-15);  // min + (lr - min) (1 + cos(pi/2)) / 2
  EXPECT_NEAR(cosine.at(25), 0.01 + 0.09 * (1 + std::sqrt(0.5)) / 2, 1e-15);
  EXPECT_NEAR(cosine.at(100), 0.01, 1e-15);
}

TEST(Schedule, OneCycleByHand) {
  // lr 1, 100 steps, pct_start 0.3: up from 1/25 over steps 0..29, down to
  // 1/25/1e4 = 4e-6 at step 99.
  Schedule one = schedule("onecycle", 1.0, 100);
  EXPECT_NEAR(one.at(0), 0.04, 1e-15);
  EXPECT_NEAR(one.at(29), 1.0, 1e-15);
  EXPECT_NEAR(one.at(64), 4e-6 + (1 - 4e-6) / 2, 1e-12);  // halfway down: (64 - 29) / 70
  EXPECT_NEAR(one.at(99), 4e-6, 1e-15);
  // Rising phase at pct 1/2 of 29 steps is not a step; pct 14/29 is.
  EXPECT_NEAR(one.at(14), 1.0 + (0.04 - 1.0) / 2 * (std::cos(kPi * 14 / 29) + 1), 1e-12);
}

TEST(Schedule, LinearWarmupScalesTheFirstSteps) {
  Schedule warm = schedule("constant", 0.1, 100);
  warm.warmup_steps = 4;
  EXPECT_NEAR(warm.at(0), 0.025, 1e-15);
  EXPECT_NEAR(warm.at(1), 0.05, 1e-15);
  EXPECT_NEAR(warm.at(3), 0.1, 1e-15);
  EXPECT_EQ(warm.at(4), 0.1);
  warm.kind = "cosine";
  EXPECT_NEAR(warm.at(2), 0.75 * 0.1 * (1 + std::cos(kPi * 2 / 100)) / 2, 1e-15);
}

TEST(Schedule, InvalidSettingsAreConfigErrors) {
  EXPECT_NO_THROW(schedule("cosine", 0.1, 10).check());
  EXPECT_THROW(schedule("linear", 0.1, 10).check(), ConfigError);
  EXPECT_THROW(schedule("constant", 0.0, 10).check(), ConfigError);
  EXPECT_THROW(schedule("constant", 0.1, 0).check(), ConfigError);
  Schedule s = schedule("cosine", 0.1, 10);
  s.min_lr = 0.2;
  EXPECT_THROW(s.check(), ConfigError);
  s = schedule("onecycle", 0.1, 10);
  s.pct_start = 1.0;
  EXPECT_THROW(s.check(), ConfigError);
  s = schedule("step", 0.1, 10);
  s.step_size = 0;
  EXPECT_THROW(s.check(), ConfigError);
  s = schedule("constant", 0.1, 10);
  s.warmup_steps = -1;
  EXPECT_THROW(s.check(), ConfigError);
}

// Each case: a kiln schedule and the torch scheduler that should give the same
// learning rates. Warmup is torch's LinearLR(start 1/w, end 1, total_iters w - 1),
// whose factor (t + 1) / w multiplies the scheduler's rate.
struct TorchCase {
  Schedule schedule;
  nlohmann::json torch;
};

std::vector<TorchCase> torch_cases() {
  std::vector<TorchCase> cases;
  Schedule step = schedule("step", 0.2, 50);
  step.step_size = 7;
  step.gamma = 0.3;
  cases.push_back({step, {{"kind", "step"}, {"step_size", 7}, {"gamma", 0.3}}});
  Schedule cosine = schedule("cosine", 0.1, 60);
  cosine.min_lr = 0.005;
  cases.push_back({cosine, {{"kind", "cosine"}, {"eta_min", 0.005}}});
  Schedule one = schedule("onecycle", 0.5, 80);
  one.pct_start = 0.25;
  one.div_factor = 10;
  one.final_div_factor = 100;
  cases.push_back(
      {one, {{"kind", "onecycle"}, {"pct_start", 0.25}, {"div", 10}, {"final_div", 100}}});
  Schedule defaults = schedule("onecycle", 0.01, 37);
  cases.push_back(
      {defaults, {{"kind", "onecycle"}, {"pct_start", 0.3}, {"div", 25}, {"final_div", 1e4}}});
  Schedule warm_cosine = cosine;
  warm_cosine.warmup_steps = 8;
  cases.push_back({warm_cosine, {{"kind", "cosine"}, {"eta_min", 0.005}, {"warmup", 8}}});
  Schedule warm_constant = schedule("constant", 0.03, 20);
  warm_constant.warmup_steps = 5;
  cases.push_back({warm_constant, {{"kind", "constant"}, {"warmup", 5}}});
  return cases;
}

const char* kTorchScheduleScript = R"(
import sys, json, warnings
try:
    import torch
except ImportError as e:
    print("skipped: torch is not importable:", e); sys.exit(77)
warnings.simplefilter("ignore")
from torch.optim import lr_scheduler as S

def rates(lr, total, make):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = make(opt)
    out = []
    for t in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if t + 1 < total:
            sched.step()
    return out

results = []
for c in json.load(open(sys.argv[1])):
    lr, total, k = c["lr"], c["total"], c["torch"]["kind"]
    if k == "step":
        make = lambda o: S.StepLR(o, step_size=c["torch"]["step_size"], gamma=c["torch"]["gamma"])
    elif k == "cosine":
        make = lambda o: S.CosineAnnealingLR(o, T_max=total, eta_min=c["torch"]["eta_min"])
    elif k == "onecycle":
        make = lambda o: S.OneCycleLR(o, max_lr=lr, total_steps=total, pct_start=c["torch"]["pct_start"],
                                      anneal_strategy="cos", div_factor=c["torch"]["div"],
                                      final_div_factor=c["torch"]["final_div"], cycle_momentum=False)
    else:
        make = lambda o: S.LambdaLR(o, lambda t: 1.0)
    base = rates(lr, total, make)
    w = c["torch"].get("warmup", 0)
    if w > 1:
        factor = rates(1.0, total, lambda o: S.LinearLR(o, start_factor=1.0 / w, end_factor=1.0,
                                                         total_iters=w - 1))
        base = [b * f for b, f in zip(base, factor)]
    results.append(base)
json.dump(results, open(sys.argv[2], "w"))
)";

TEST(Schedule, MatchesTorchLrScheduler) {
  const std::vector<TorchCase> cases = torch_cases();
  nlohmann::json input = nlohmann::json::array();
  for (const TorchCase& c : cases) {
    c.schedule.check();
    input.push_back({{"lr", c.schedule.lr}, {"total", c.schedule.total_steps}, {"torch", c.torch}});
  }
  const test::TempDir dir;
  std::ofstream(dir / "cases.json") << input.dump();
  KILN_RUN_PYTHON_CHECK(dir.path(), kTorchScheduleScript,
                        {(dir / "cases.json").string(), (dir / "torch.json").string()});
  const auto torch = nlohmann::json::parse(std::ifstream(dir / "torch.json"));
  ASSERT_EQ(torch.size(), cases.size());
  for (std::size_t c = 0; c < cases.size(); ++c) {
    ASSERT_EQ(torch[c].size(), static_cast<std::size_t>(cases[c].schedule.total_steps));
    for (std::int64_t t = 0; t < cases[c].schedule.total_steps; ++t) {
      // torch's CosineAnnealingLR and LinearLR are recursive (each rate from the
      // previous one), so they drift from the closed forms by ~1e-15 per step.
      const double expected = torch[c][static_cast<std::size_t>(t)].get<double>();
      EXPECT_NEAR(cases[c].schedule.at(t), expected, 1e-12 + 1e-9 * expected)
          << cases[c].torch.dump() << " step " << t;
    }
  }
}

}  // namespace
}  // namespace kiln::nn
