// Private: the caching allocator shared by all devices. Sizes are rounded up to
// size classes (powers of two split in four: 1.0, 1.25, 1.5, 1.75 x 2^k), so a
// freed block serves any later request of its class and waste stays under 25%.
// One mutex guards the free lists: a training step allocates a few dozen blocks,
// far from contention.
//
// Private pools serve CUDA graphs: a captured graph keeps the addresses of every
// block its step used, so those blocks must never be handed to anyone else while
// the graph lives. Between begin_pool and end_pool every allocation comes from the
// pool (its own free lists, or new blocks it then owns); a pool block freed at any
// time goes back to its pool. release_pool hands the pool's free blocks back to
// the shared lists (the graph is gone); blocks still in use follow when freed.
// While a pool is active no cached block goes back to the system (cudaFree is not
// allowed during a capture): an allocation the system refuses then fails.
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

  // Allocations go to pool `id` (> 0) until end_pool(). One pool at a time.
  void begin_pool(int id);
  void end_pool();
  void release_pool(int id);

 private:
  using FreeLists = std::map<std::size_t, std::vector<void*>>;
  FreeLists& free_lists(int pool) { return pool == 0 ? free_ : pools_[pool]; }
  void* allocate_new(std::size_t size, std::size_t bytes);
  void free_shared_cache();  // mutex_ held

  System system_;
  mutable std::mutex mutex_;
  FreeLists free_;                   // the shared lists (pool 0)
  std::map<int, FreeLists> pools_;   // private pools' free blocks
  std::map<void*, int> pool_owner_;  // blocks owned by a private pool
  int active_pool_ = 0;
  AllocatorStats stats_;
};

Allocator& cpu_allocator();

}  // namespace kiln
