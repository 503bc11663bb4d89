#include "tensor/caching_allocator.h"

#include <kiln/error.h>

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <iterator>

namespace kiln {
namespace {

constexpr std::size_t kAlignment = 64;
constexpr std::size_t kMinimumBlock = 256;

// "12.3 MiB (12894208 bytes)": readable, and exact for whoever sizes a batch.
std::string human_bytes(std::size_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  if (unit == 0) return std::to_string(bytes) + " bytes";
  char text[64];
  std::snprintf(text, sizeof text, "%.1f %s (%zu bytes)", value, units[unit], bytes);
  return text;
}

}  // namespace

Allocator::~Allocator() = default;

std::size_t allocator_size_class(std::size_t bytes) {
  if (bytes <= kMinimumBlock) return kMinimumBlock;
  const std::size_t quarter = std::bit_floor(bytes) / 4;
  return (bytes + quarter - 1) / quarter * quarter;
}

void* CachingAllocator::allocate(std::size_t bytes) {
  const std::size_t size = allocator_size_class(bytes);
  std::lock_guard lock(mutex_);
  auto& blocks = free_lists(active_pool_)[size];
  if (!blocks.empty()) {
    void* block = blocks.back();
    blocks.pop_back();
    stats_.bytes_cached -= size;
    stats_.bytes_in_use += size;
    return block;
  }
  void* block = allocate_new(size, bytes);
  if (active_pool_ != 0) pool_owner_[block] = active_pool_;
  return block;
}

void* CachingAllocator::allocate_new(std::size_t size, std::size_t bytes) {
  void* block = system_.allocate(size);
  // Cached blocks of other sizes may be enough once returned to the system (the
  // shared lists only: a pool's blocks belong to a live graph). Not while a pool
  // is active, that is while a CUDA graph is being captured: cudaFree waits for
  // the whole device, which a capture forbids even in relaxed mode, so the free
  // would invalidate the capture and fail, leaking the blocks. The allocation
  // fails instead; the capture is abandoned and the step runs eagerly, where the
  // cache can be returned.
  const bool capturing = active_pool_ != 0;
  if (block == nullptr && !capturing) {
    free_shared_cache();
    block = system_.allocate(size);
  }
  if (block == nullptr)
    throw StageError(
        "out of " + system_.device + " memory: a tensor of " + human_bytes(bytes) +
        " does not fit (" + human_bytes(stats_.bytes_in_use) + " in use by kiln" +
        (capturing && stats_.bytes_cached > 0
             ? ", " + human_bytes(stats_.bytes_cached) +
                   " cached, which cannot be returned to the device while a CUDA graph is "
                   "being captured)"
             : ")"));
  ++stats_.system_allocations;
  stats_.bytes_in_use += size;
  return block;
}

void CachingAllocator::deallocate(void* pointer, std::size_t bytes) {
  if (pointer == nullptr) return;
  const std::size_t size = allocator_size_class(bytes);
  std::lock_guard lock(mutex_);
  stats_.bytes_in_use -= size;
  stats_.bytes_cached += size;
  int pool = 0;
  if (!pool_owner_.empty())
    if (const auto it = pool_owner_.find(pointer); it != pool_owner_.end()) pool = it->second;
  free_lists(pool)[size].push_back(pointer);
}

void CachingAllocator::begin_pool(int id) {
  std::lock_guard lock(mutex_);
  if (id <= 0 || active_pool_ != 0)
    throw InternalError("caching allocator: pool " + std::to_string(id) + " begun while pool " +
                        std::to_string(active_pool_) + " is active");
  active_pool_ = id;
}

void CachingAllocator::end_pool() {
  std::lock_guard lock(mutex_);
  active_pool_ = 0;
}

void CachingAllocator::release_pool(int id) {
  std::lock_guard lock(mutex_);
  if (active_pool_ == id) active_pool_ = 0;
  const auto pool = pools_.find(id);
  if (pool != pools_.end()) {
    for (auto& [size, blocks] : pool->second)
      for (void* block : blocks) free_[size].push_back(block);
    pools_.erase(pool);
  }
  std::erase_if(pool_owner_, [id](const auto& entry) { return entry.second == id; });
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void CachingAllocator::release_cached() {
  std::lock_guard lock(mutex_);
  // During a capture nothing may go back to the system (see allocate_new); the
  // cache stays for later, which is all "release what you can" promises.
  if (active_pool_ == 0) free_shared_cache();
}

void CachingAllocator::free_shared_cache() {
  for (auto& [size, blocks] : free_) {
    for (void* block : blocks) system_.free(block);
    stats_.bytes_cached -= size * blocks.size();
  }
  free_.clear();
}

Allocator& cpu_allocator() {
  // Never destroyed: tensors held by static objects may be freed after main().
  static auto* allocator =
      new CachingAllocator({[](std::size_t size) { return std::aligned_alloc(kAlignment, size); },
                            [](void* block) { std::free(block); }, "host"});
  return *allocator;
}

}  // namespace kiln
