#include <gtest/gtest.h>

#include "core/console.h"

namespace kiln {
namespace {

TEST(Progress, LineShowsEpochStepLossThroughputAndEta) {
  ProgressUpdate update;
  update.step = 250;
  update.total_steps = 1000;
  update.epoch = 2;
  update.epochs = 4;
  update.loss = 0.41234;
  update.samples_per_s = 12345.4;
  EXPECT_EQ(format_progress("train", update, 10.0),
            "train  epoch 2/4  step 250/1000  25%  ETA 0:30  loss 0.4123  12345 samples/s");
}

TEST(Progress, LastStepHasNoEta) {
  ProgressUpdate update;
  update.step = 10;
  update.total_steps = 10;
  EXPECT_EQ(format_progress("s", update, 5.0), "s  step 10/10 100%");
}

}  // namespace
}  // namespace kiln
