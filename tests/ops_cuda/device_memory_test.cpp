// The tensor layer on a CUDA device: copies in every direction (ordered on the
// device's stream, and between two GPUs on both), fills, the caching allocator,
// and the out-of-memory error.
#include <kiln/device.h>
#include <kiln/error.h>
#include <kiln/tensor/allocator.h>

#include <gmock/gmock.h>

#include "ops_cuda/cuda_twin.h"

namespace kiln::ops::test {
namespace {

class DeviceMemoryCuda : public CudaTwin {};

TEST_F(DeviceMemoryCuda, CopiesRoundTripThroughTheDevice) {
  const Tensor host = random_tensor({33, 65}, 1);
  const Tensor device = host.to(gpu());
  EXPECT_EQ(device.device(), gpu());
  const Tensor copy = device.clone();  // device to device
  expect_equal(copy, host, "host -> device -> device -> host");
  // Into a row view, from another device tensor.
  Tensor target = poisoned({40, 65});
  Tensor rows = target.rows(3, 36);
  rows.copy_from(copy);
  expect_equal(rows, host, "copy into a row view");
}

TEST_F(DeviceMemoryCuda, ZeroAndFill) {
  Tensor t = poisoned({1000});
  t.zero();
  expect_equal(t, Tensor::zeros({1000}), "zero");
  t.fill(2.5f);
  expect_equal(t, Tensor::full({1000}, 2.5f), "fill");
}

TEST_F(DeviceMemoryCuda, FreedBlocksAreReused) {
  Allocator& allocator = allocator_for(gpu());
  { const Tensor warm = Tensor::empty({1 << 20}, DType::F32, gpu()); }
  const std::size_t before = allocator.stats().system_allocations;
  for (int i = 0; i < 10; ++i) {
    const Tensor t = Tensor::empty({1 << 20}, DType::F32, gpu());
    EXPECT_EQ(t.device(), gpu());
  }
  EXPECT_EQ(allocator.stats().system_allocations, before);
}

// 16 TiB fits on no GPU: the error names the tensor, its size and the device.
TEST_F(DeviceMemoryCuda, OutOfMemoryNamesTheTensorAndTheDevice) {
  try {
    const Tensor huge = Tensor::empty({std::int64_t{1} << 42}, DType::F32, gpu());
    FAIL() << "allocated 16 TiB on " << gpu().str();
  } catch (const StageError& e) {
    EXPECT_THAT(e.what(),
                ::testing::HasSubstr("tensor f32 [4398046511104] on cuda:0: out of cuda:0 "
                                     "memory: a tensor of 16.0 TiB (17592186044416 bytes)"));
  }
  // The device is still usable afterwards.
  const Tensor small = random_tensor({8}, 2);
  expect_equal(small.to(gpu()), small, "a copy after the failed allocation");
}

// The copy to cuda:1 runs on cuda:1's stream; right after it the source block goes
// back to cuda:0's cache and is handed out and overwritten on cuda:0's stream. The
// copy must have read it first: cuda:0's stream waits for it.
TEST_F(DeviceMemoryCuda, CopyBetweenGpusFinishesReadingBeforeTheSourceIsReused) {
  if (probe_devices().devices.size() < 2) GTEST_SKIP() << "needs two GPUs";
  const Device first = Device::cuda(0), second = Device::cuda(1);
  // 256 MiB: long enough a copy for the overwrite to overtake it, were it free to.
  const std::int64_t n = std::int64_t{1} << 26;
  const Tensor expected = random_tensor({1 << 16}, 21);
  for (int round = 0; round < 5; ++round) {
    Tensor source = Tensor::full({n}, 1.0f + static_cast<float>(round), first);
    source.rows(0, 1 << 16).copy_from(expected.to(first));
    const void* block = source.raw();
    const Tensor copy = source.to(second);
    source = Tensor();
    Tensor reused = Tensor::empty({n}, DType::F32, first);
    ASSERT_EQ(reused.raw(), block) << "the cache should hand the freed block out again";
    reused.fill(-7.0f);
    expect_equal(copy.rows(0, 1 << 16), expected, "the head of the copy");
    const std::vector<float> tail = values_of(copy.rows(n - 1024, n));
    for (const float v : tail) ASSERT_EQ(v, 1.0f + static_cast<float>(round)) << "round " << round;
  }
}

}  // namespace
}  // namespace kiln::ops::test
