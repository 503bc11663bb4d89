// Batch buffers of the streaming loader and the hand-over between its reader
// thread and next(): a fixed set of buffers, allocated once with the loader's
// HostAllocator (pinned memory later), recycled when the last copy of a Batch
// drops. Internal to engine/src/data.
#pragma once

#include <kiln/data/loader.h>
#include <kiln/data/reader.h>

#include "data/loader_window.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>

namespace kiln::data::detail {

// Where each array's rows sit in one batch buffer.
class BatchLayout {
 public:
  BatchLayout() = default;
  BatchLayout(const DatasetReader& reader, const std::vector<std::string>& arrays,
              std::int64_t capacity_rows);

  std::size_t bytes() const { return bytes_; }
  // Copies row `window_position` of `window` to row `batch_row` of `memory`.
  void copy_row(const WindowBuffer& window, std::int64_t window_position, std::int64_t batch_row,
                std::uint8_t* memory, Batch& batch) const;
  // Points batch.arrays at `memory`, batch.rows rows each.
  void describe(Batch& batch, const std::uint8_t* memory) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<std::int64_t> row_shape;
    std::int64_t row_bytes;
    std::size_t offset;
  };
  std::vector<Entry> entries_;
  std::size_t bytes_ = 0;
};

class BatchChannel : public std::enable_shared_from_this<BatchChannel> {
 public:
  BatchChannel(const BatchLayout& layout, int buffers, HostAllocator allocator);
  ~BatchChannel();
  BatchChannel(const BatchChannel&) = delete;
  BatchChannel& operator=(const BatchChannel&) = delete;

  struct Slot {
    Batch batch;  // storage set; the rest is the producer's to fill
    std::uint8_t* memory = nullptr;
  };
  // Producer side. Both return nothing / false once cancel() was called. With no
  // buffer free, acquire waits for half of them (or for one, if the consumer
  // waits for a batch): the producer then fills several in one go, and the
  // consumer wakes it once per several batches instead of once per batch.
  std::optional<Slot> acquire();
  bool push(Batch batch);
  void finish(std::exception_ptr error);

  // Consumer side: the next batch; nullopt at the end of the epoch; rethrows the
  // producer's error.
  std::optional<Batch> pop();
  void cancel();
  // After the producer has stopped: drops queued batches and clears the state.
  void drain();

 private:
  void release(std::size_t buffer);

  HostAllocator allocator_;
  std::size_t buffer_bytes_;
  std::vector<std::uint8_t*> buffers_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::size_t> free_;
  std::size_t refill_ = 1;  // free buffers that wake a waiting producer
  bool consumer_waiting_ = false;
  std::deque<Batch> ready_;
  bool cancelled_ = false;
  bool finished_ = false;
  std::exception_ptr error_;
};

}  // namespace kiln::data::detail
