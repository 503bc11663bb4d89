// The tensor layer on a CUDA device: copies in every direction (ordered on the
// device's stream), fills, the caching allocator, and the out-of-memory error.
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

}  // namespace
}  // namespace kiln::ops::test
