// The pinned-upload ring's bookkeeping (train/upload_slot_ring.h) without a GPU:
// the mark and wait actions stand for cudaEventRecord and cudaEventSynchronize,
// and the log of them is what a slot's reuse would have waited for.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "train/upload_slot_ring.h"

namespace kiln::train {
namespace {

class UploadSlotRingTest : public ::testing::Test {
 protected:
  UploadSlotRing ring_{3,
                       {[this](std::size_t slot) { act("mark", slot, fail_mark_); },
                        [this](std::size_t slot) { act("wait", slot, fail_wait_); }}};
  std::vector<std::string> log_;
  bool fail_mark_ = false, fail_wait_ = false;

  void act(const char* what, std::size_t slot, bool fail) {
    if (fail) throw std::runtime_error(std::string(what) + " failed");
    log_.push_back(what + std::to_string(slot));
  }
  // One batch of `copies` uploads.
  void batch(int copies) {
    ring_.begin_batch();
    for (int i = 0; i < copies; ++i) ring_.copy_issued();
    ring_.end_batch();
  }
};

TEST_F(UploadSlotRingTest, ASlotIsReusedOnlyAfterWaitingForItsCopies) {
  batch(2);
  batch(1);
  batch(0);  // nothing copied: nothing to mark or wait for
  EXPECT_EQ(log_, (std::vector<std::string>{"mark0", "mark1"}));
  batch(1);  // slot 0 again
  batch(1);  // slot 1 again
  batch(1);  // slot 2 again: it copied nothing last time
  EXPECT_EQ(log_, (std::vector<std::string>{"mark0", "mark1", "wait0", "mark0", "wait1", "mark1",
                                            "mark2"}));
}

// The bug this ring fixes: a batch cut short by an exception never reached
// end_batch, so its slot had no event, and its reuse did not wait for its copies.
TEST_F(UploadSlotRingTest, ABatchCutShortIsMarkedAndWaitedFor) {
  EXPECT_EQ(ring_.begin_batch(), 0u);
  ring_.copy_issued();
  // ... the next upload throws; end_batch is never called ...
  EXPECT_TRUE(log_.empty());
  batch(1);  // leaving slot 0 marks it, behind its copies
  batch(1);
  EXPECT_EQ(ring_.begin_batch(), 0u);
  EXPECT_EQ(log_, (std::vector<std::string>{"mark0", "mark1", "mark2", "wait0"}));
}

// A failing CUDA call leaves the ring as it was: the next call tries again and
// no slot is ever reused unwaited.
TEST_F(UploadSlotRingTest, AFailedMarkOrWaitIsRetried) {
  batch(1);
  batch(1);
  batch(1);
  ring_.begin_batch();  // slot 0, waited
  ring_.copy_issued();
  fail_mark_ = true;
  EXPECT_THROW(ring_.end_batch(), std::runtime_error);
  EXPECT_THROW(ring_.begin_batch(), std::runtime_error);
  EXPECT_EQ(ring_.current(), 0u) << "the ring did not move on";
  fail_mark_ = false;
  fail_wait_ = true;
  EXPECT_THROW(ring_.begin_batch(), std::runtime_error);  // slot 0 marked, slot 1's wait failed
  EXPECT_EQ(ring_.current(), 0u);
  fail_wait_ = false;
  EXPECT_EQ(ring_.begin_batch(), 1u);
  EXPECT_EQ(log_, (std::vector<std::string>{"mark0", "mark1", "mark2", "wait0", "mark0", "wait1"}));
}

}  // namespace
}  // namespace kiln::train
