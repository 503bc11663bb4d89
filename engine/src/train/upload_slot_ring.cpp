#include "train/upload_slot_ring.h"

#include <kiln/error.h>

namespace kiln::train {

UploadSlotRing::UploadSlotRing(std::size_t slots, Actions actions)
    : actions_(std::move(actions)), states_(slots, State::Idle), current_(slots - 1) {
  if (slots == 0) throw InternalError("UploadSlotRing: no slots");
}

std::size_t UploadSlotRing::begin_batch() {
  // The previous batch may have been cut short by an exception before end_batch:
  // its copies still read its buffers, and only an event recorded now (after
  // them on the same stream) tells when they are done.
  mark_if_filling(current_);
  const std::size_t next = (current_ + 1) % states_.size();
  if (states_[next] == State::Marked) actions_.wait(next);
  states_[next] = State::Idle;
  current_ = next;
  return next;
}

void UploadSlotRing::end_batch() { mark_if_filling(current_); }

void UploadSlotRing::mark_if_filling(std::size_t slot) {
  if (states_[slot] != State::Filling) return;
  actions_.mark(slot);
  states_[slot] = State::Marked;
}

}  // namespace kiln::train
