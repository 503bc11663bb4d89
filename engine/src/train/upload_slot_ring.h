// Private to train: the bookkeeping of DeviceUpload's ring of pinned slots, kept
// apart from CUDA so that a CPU test can drive it through failures. A slot's
// pinned buffers may be refilled only once the copies that read them are done,
// and that is known only through an event recorded after those copies. So the
// ring knows, for each slot, whether copies were issued with no event after them
// yet (filling), or whether an event covers them and has not been waited for
// (marked). Leaving a filling slot marks it, whether the batch ended or an
// exception cut it short; reusing a marked slot waits first. A state changes only
// after its CUDA call succeeded, so a throwing call leaves the ring as it was and
// the next call tries again.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

namespace kiln::train {

class UploadSlotRing {
 public:
  struct Actions {
    std::function<void(std::size_t)> mark;  // record slot's event after its copies
    std::function<void(std::size_t)> wait;  // wait on the host for slot's event
  };
  UploadSlotRing(std::size_t slots, Actions actions);

  // Starts a batch in the next slot and returns it, marking the slot left behind
  // if it was filling and waiting for the new one's earlier copies if need be.
  std::size_t begin_batch();
  // Before each copy out of the current slot's buffers is issued.
  void copy_issued() { states_[current_] = State::Filling; }
  // After the batch's copies: marks the slot unless nothing was copied.
  void end_batch();
  std::size_t current() const noexcept { return current_; }

 private:
  enum class State { Idle, Filling, Marked };
  void mark_if_filling(std::size_t slot);

  Actions actions_;
  std::vector<State> states_;
  std::size_t current_;
};

}  // namespace kiln::train
