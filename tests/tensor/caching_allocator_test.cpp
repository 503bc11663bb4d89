// The caching allocator on host memory: freed blocks are reused by size class,
// and a private pool's blocks (what a CUDA graph's addresses point at) are never
// handed out outside the pool until the pool is released.
#include <gtest/gtest.h>

#include <cstdlib>
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

}  // namespace
}  // namespace kiln
