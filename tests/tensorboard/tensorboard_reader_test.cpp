// Acceptance 1 of issue 6: TensorBoard's own reader (pip `tensorboard`, its
// EventAccumulator) reads the event file of a run written through the decorator
// around a real MlflowRun, and finds the same steps and values as the run's MLflow
// metric files.
#include <kiln/registry/mlflow_store.h>
#include <kiln/tensorboard.h>

#include <gtest/gtest.h>

#include <cmath>

#include "formats/python_check.h"
#include "support/support.h"

namespace kiln::tensorboard {
namespace {

namespace fs = std::filesystem;

// Compares every metric file of the run with EventAccumulator.Scalars(key): the
// same steps in the same order, the same values rounded to float32 (NaN == NaN),
// wall times within 5 s of MLflow's timestamps.
constexpr const char* kCompareScript = R"(
import math, os, sys
try:
    import numpy as np
    from tensorboard.backend.event_processing import event_accumulator
except Exception as e:
    print("skipped: cannot import tensorboard:", e); sys.exit(77)
tb_dir, run_dir, *keys = sys.argv[1:]
ea = event_accumulator.EventAccumulator(tb_dir, size_guidance={event_accumulator.SCALARS: 0})
ea.Reload()
assert sorted(ea.Tags()["scalars"]) == sorted(keys), ea.Tags()["scalars"]
for key in keys:
    with open(os.path.join(run_dir, "metrics", key)) as f:
        lines = [line.split() for line in f if line.strip()]
    events = ea.Scalars(key)
    assert [int(s) for _, _, s in lines] == [e.step for e in events], (key, lines, events)
    for (ms, value, step), event in zip(lines, events):
        want, got = np.float32(float(value)), np.float32(event.value)
        same = (math.isnan(want) and math.isnan(got)) or want == got
        assert same, (key, step, value, event.value)
        assert abs(event.wall_time * 1000 - int(ms)) < 5000, (key, ms, event.wall_time)
    print(f"ok {key}: {len(events)} points")
)";

TEST(TensorBoardReader, ReadsTheSameStepsAndValuesAsTheMlflowMetricFiles) {
  const test::TempDir dir;
  registry::MlflowStore store(dir / "registry");
  const auto run = store.start_run(store.ensure_experiment("tensorboard"), "reader-check");
  fs::path event_file;
  {
    TensorBoardRunLog log(*run);
    for (std::int64_t step = 1; step <= 200; ++step) {
      log.log_metric("train/loss", 2.0 / static_cast<double>(step) + 0.1, step * 5);
      if (step % 20 == 0) log.log_metric("train/accuracy", 0.5 + 0.002 * step, step * 5);
    }
    log.log_metric("train/loss", std::nan(""), 1005);
    log.log_metric("train/loss", 1e-30, 1010);
    log.log_metric("eval/accuracy", 0.875, 0);
    log.log_metric("big/step", 3.0, std::int64_t{1} << 40);
    log.log_param("lr", "0.1");
    log.close();
    event_file = log.event_file();
  }
  run->end(registry::RunStatus::Finished);
  EXPECT_EQ(event_file.parent_path(), run->directory() / "artifacts" / "tensorboard");
  KILN_RUN_PYTHON_CHECK(dir.path(), kCompareScript,
                        {event_file.parent_path().string(), run->directory().string(), "train/loss",
                         "train/accuracy", "eval/accuracy", "big/step"});
}

}  // namespace
}  // namespace kiln::tensorboard
