// Private: the caching allocator shared by all devices. Sizes are rounded up to
// size classes (powers of two split in four: 1.0, 1.25, 1.5, 1.75 x 2^k), so a
// freed block serves any later request of its class and waste stays under 25%.
// One mutex guards the free lists: a training step allocates a few dozen blocks,
// far from contention.
#pragma once

#include <kiln/tensor/allocator.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kiln {

std::size_t allocator_size_class(std::size_t bytes);

class CachingAllocator final : public Allocator {
 public:
  struct System {
    std::function<void*(std::size_t)> allocate;  // nullptr when out of memory
    std::function<void(void*)> free;
    std::string device;  // for the out-of-memory message
  };

  explicit CachingAllocator(System system) : system_(std::move(system)) {}
  ~CachingAllocator() override { release_cached(); }

  void* allocate(std::size_t bytes) override;
  void deallocate(void* pointer, std::size_t bytes) override;
  AllocatorStats stats() const override;
  void release_cached() override;

 private:
  System system_;
  mutable std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

Allocator& cpu_allocator();

}  // namespace kiln
