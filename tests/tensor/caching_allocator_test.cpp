// The caching allocator on host memory: freed blocks are reused by size class,
// and a private pool's blocks (what a CUDA graph's addresses point at) are never
// handed out outside the pool until the pool is released.
#include <kiln/error.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>

#include "tensor/caching_allocator.h"

namespace kiln {
namespace {

class CachingAllocatorTest : public ::testing::Test {
 protected:
  CachingAllocator allocator_{{[this](std::size_t size) {
                                 ++system_calls_;
                                 return std::malloc(size);
                               },
                               [](void* block) { std::free(block); }, "test"}};
  int system_calls_ = 0;
};

TEST_F(CachingAllocatorTest, FreedBlocksServeTheirSizeClass) {
  void* a = allocator_.allocate(1000);
  allocator_.deallocate(a, 1000);
  void* again = allocator_.allocate(900);
  EXPECT_EQ(again, a) << "900 and 1000 bytes share the 1024 class";
  EXPECT_EQ(system_calls_, 1);
  void* larger = allocator_.allocate(5000);
  EXPECT_NE(larger, a);
  EXPECT_EQ(system_calls_, 2);
  allocator_.deallocate(again, 900);
  allocator_.deallocate(larger, 5000);
}

TEST_F(CachingAllocatorTest, PoolBlocksStayInThePoolUntilReleased) {
  allocator_.begin_pool(1);
  void* captured = allocator_.allocate(4096);
  void* kept = allocator_.allocate(4096);
  allocator_.deallocate(captured, 4096);
  // Inside the pool its own free block is reused.
  EXPECT_EQ(allocator_.allocate(4096), captured);
  allocator_.deallocate(captured, 4096);
  allocator_.end_pool();

  // Outside, the same size class gets a fresh block, even after the pool's
  // other block is freed late.
  allocator_.deallocate(kept, 4096);
  void* outside = allocator_.allocate(4096);
  EXPECT_NE(outside, captured);
  EXPECT_NE(outside, kept);
  allocator_.deallocate(outside, 4096);

  // Back in the pool, both of its blocks are there; the shared one is not used.
  allocator_.begin_pool(1);
  std::set<void*> again{allocator_.allocate(4096), allocator_.allocate(4096)};
  EXPECT_EQ(again, (std::set<void*>{captured, kept}));
  for (void* block : again) allocator_.deallocate(block, 4096);
  allocator_.end_pool();

  // Released, the pool's blocks join the shared lists.
  allocator_.release_pool(1);
  std::set<void*> shared;
  for (int i = 0; i < 3; ++i) shared.insert(allocator_.allocate(4096));
  EXPECT_EQ(shared, (std::set<void*>{captured, kept, outside}));
  EXPECT_EQ(system_calls_, 3);
  const AllocatorStats stats = allocator_.stats();
  EXPECT_EQ(stats.bytes_cached, 0u);
  EXPECT_EQ(stats.bytes_in_use, 3u * 4096u);
  for (void* block : shared) allocator_.deallocate(block, 4096);
}

TEST_F(CachingAllocatorTest, NestedPoolsAreRefused) {
  allocator_.begin_pool(1);
  EXPECT_THROW(allocator_.begin_pool(2), std::exception);
  allocator_.end_pool();
}

// A device of 8 KiB: the system refuses what would exceed it, like cudaMalloc.
class SmallDeviceTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kCapacity = 8192;
  // Declared first: the allocator returns its cache when destroyed, and needs them.
  std::size_t held_ = 0;
  std::map<void*, std::size_t> sizes_;
  int system_frees_ = 0;
  CachingAllocator allocator_{{[this](std::size_t size) -> void* {
                                 if (held_ + size > kCapacity) return nullptr;
                                 held_ += size;
                                 void* block = std::malloc(size);
                                 sizes_[block] = size;
                                 return block;
                               },
                               [this](void* block) {
                                 ++system_frees_;
                                 held_ -= sizes_.at(block);
                                 sizes_.erase(block);
                                 std::free(block);
                               },
                               "test"}};
};

// Under memory pressure the shared cache goes back to the system, but never while
// a pool is active (a CUDA graph being captured, where cudaFree is not allowed):
// the allocation fails and says why, and the cache is still there afterwards.
TEST_F(SmallDeviceTest, CacheIsNotFreedDuringACapture) {
  void* cached = allocator_.allocate(4096);
  allocator_.deallocate(cached, 4096);  // 4 KiB cached, 4 KiB left on the device

  allocator_.begin_pool(1);
  try {
    allocator_.allocate(6144);
    FAIL() << "6 KiB allocated beside 4 KiB cached on an 8 KiB device";
  } catch (const StageError& error) {
    EXPECT_THAT(error.what(), ::testing::HasSubstr("4.0 KiB (4096 bytes) cached, which cannot be "
                                                   "returned to the device while a CUDA graph is "
                                                   "being captured"));
  }
  allocator_.release_cached();  // also a no-op while capturing
  EXPECT_EQ(system_frees_, 0);
  EXPECT_EQ(allocator_.stats().bytes_cached, 4096u);
  allocator_.end_pool();
  allocator_.release_pool(1);

  // Outside the capture the same request returns the cache first, then fits.
  void* block = allocator_.allocate(6144);
  EXPECT_NE(block, nullptr);
  EXPECT_EQ(system_frees_, 1);
  EXPECT_EQ(allocator_.stats().bytes_cached, 0u);
  allocator_.deallocate(block, 6144);
}

}  // namespace
}  // namespace kiln
