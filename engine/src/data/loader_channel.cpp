#include "data/loader_channel.h"

#include <kiln/error.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace kiln::data::detail {
namespace {

// Cache-line alignment for every array in a buffer (and what cudaHostAlloc gives).
constexpr std::size_t kAlignment = 64;

std::size_t aligned(std::size_t bytes) {
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

HostAllocator heap_allocator() {
  return {[](std::size_t bytes) -> void* {
            void* pointer =
                std::aligned_alloc(kAlignment, aligned(std::max<std::size_t>(bytes, 1)));
            if (pointer == nullptr) throw std::bad_alloc();
            return pointer;
          },
          [](void* pointer, std::size_t) { std::free(pointer); }};
}

}  // namespace

BatchLayout::BatchLayout(const DatasetReader& reader, const std::vector<std::string>& arrays,
                         std::int64_t capacity_rows) {
  for (const std::string& name : arrays) {
    const ArrayInfo& info = reader.array(name);
    const std::int64_t row_bytes = reader.row_bytes(name);
    entries_.push_back({name, info.dtype,
                        std::vector<std::int64_t>(info.shape.begin() + 1, info.shape.end()),
                        row_bytes, bytes_});
    bytes_ += aligned(static_cast<std::size_t>(row_bytes * capacity_rows));
  }
}

void BatchLayout::copy_row(const WindowBuffer& window, std::int64_t window_position,
                           std::int64_t batch_row, std::uint8_t* memory, Batch& batch) const {
  for (std::size_t a = 0; a < entries_.size(); ++a) {
    const Entry& entry = entries_[a];
    std::memcpy(memory + entry.offset + batch_row * entry.row_bytes, window.row(a, window_position),
                static_cast<std::size_t>(entry.row_bytes));
  }
  batch.sample_ids.push_back(window.sample_id(window_position));
}

void BatchLayout::describe(Batch& batch, const std::uint8_t* memory) const {
  batch.arrays.clear();
  for (const Entry& entry : entries_) {
    BatchArray array{entry.name, entry.dtype, {batch.rows}, {}};
    array.shape.insert(array.shape.end(), entry.row_shape.begin(), entry.row_shape.end());
    array.bytes = {memory + entry.offset, static_cast<std::size_t>(batch.rows * entry.row_bytes)};
    batch.arrays.push_back(std::move(array));
  }
}

BatchChannel::BatchChannel(const BatchLayout& layout, int buffers, HostAllocator allocator)
    : allocator_(allocator.allocate ? std::move(allocator) : heap_allocator()),
      buffer_bytes_(layout.bytes()),
      refill_(static_cast<std::size_t>(std::max(1, buffers / 2))) {
  for (int i = 0; i < buffers; ++i) {
    buffers_.push_back(static_cast<std::uint8_t*>(allocator_.allocate(buffer_bytes_)));
    free_.push_back(static_cast<std::size_t>(i));
  }
}

BatchChannel::~BatchChannel() {
  for (std::uint8_t* buffer : buffers_) allocator_.deallocate(buffer, buffer_bytes_);
}

std::optional<BatchChannel::Slot> BatchChannel::acquire() {
  std::unique_lock lock(mutex_);
  if (free_.empty())
    changed_.wait(lock, [&] {
      return cancelled_ || free_.size() >= refill_ || (consumer_waiting_ && !free_.empty());
    });
  if (cancelled_) return std::nullopt;
  const std::size_t index = free_.back();
  free_.pop_back();
  Slot slot;
  slot.memory = buffers_[index];
  // The deleter keeps the channel (and so the memory) alive while the batch is.
  slot.batch.storage = std::shared_ptr<const void>(
      slot.memory, [channel = shared_from_this(), index](const void*) { channel->release(index); });
  return slot;
}

void BatchChannel::release(std::size_t buffer) {
  bool wake = false;
  {
    const std::lock_guard lock(mutex_);
    free_.push_back(buffer);
    wake = free_.size() == refill_ || consumer_waiting_;
  }
  // A wake-up per batch cost the MLP's training thread 55 us of its ~900 us step
  // on 2 cores (the woken producer took its core).
  if (wake) changed_.notify_all();
}

bool BatchChannel::push(Batch batch) {
  {
    const std::lock_guard lock(mutex_);
    if (cancelled_) return false;
    ready_.push_back(std::move(batch));
  }
  changed_.notify_all();
  return true;
}

void BatchChannel::finish(std::exception_ptr error) {
  {
    const std::lock_guard lock(mutex_);
    finished_ = true;
    error_ = std::move(error);
  }
  changed_.notify_all();
}

std::optional<Batch> BatchChannel::pop() {
  std::unique_lock lock(mutex_);
  if (ready_.empty() && !finished_) {
    consumer_waiting_ = true;
    changed_.notify_all();  // a producer waiting for half the buffers takes what is free
    changed_.wait(lock, [&] { return !ready_.empty() || finished_; });
    consumer_waiting_ = false;
  }
  if (!ready_.empty()) {
    Batch batch = std::move(ready_.front());
    ready_.pop_front();
    return batch;
  }
  if (error_) std::rethrow_exception(error_);
  return std::nullopt;
}

void BatchChannel::cancel() {
  {
    const std::lock_guard lock(mutex_);
    cancelled_ = true;
  }
  changed_.notify_all();
}

void BatchChannel::drain() {
  std::deque<Batch> dropped;
  {
    const std::lock_guard lock(mutex_);
    dropped.swap(ready_);
    cancelled_ = false;
    finished_ = false;
    error_ = nullptr;
  }
  // Destroyed outside the lock: their deleters take it to return the buffers.
}

}  // namespace kiln::data::detail
