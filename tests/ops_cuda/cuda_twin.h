// Shared by the CUDA-against-CPU op tests: the skip without a GPU, random inputs,
// poisoned outputs and the comparisons with their stated tolerances.
#pragma once

#include <kiln/device.h>
#include <kiln/tensor/tensor.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace kiln::ops::test {

inline Device gpu() { return Device::cuda(0); }

// Skips every test of a suite, with the reason, where no usable CUDA device exists
// (this includes a machine with the toolkit but no driver).
class CudaTwin : public ::testing::Test {
 protected:
  void SetUp() override {
    static const DeviceReport report = probe_devices();
    if (report.devices.empty())
      GTEST_SKIP() << "no usable CUDA device: " << report.why_none
                   << " (the CUDA ops are compiled, not run, on this machine)";
  }
};

// A CPU float32 tensor with values uniform in [low, high).
inline Tensor random_tensor(const Shape& shape, std::uint32_t seed, float low = -1.0f,
                            float high = 1.0f) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> uniform(low, high);
  std::vector<float> values(static_cast<std::size_t>(shape_elements(shape)));
  for (float& v : values) v = uniform(engine);
  return Tensor::from(std::move(values), shape);
}

inline Tensor random_labels(std::int64_t n, std::int32_t classes, std::uint32_t seed) {
  std::mt19937 engine(seed);
  Tensor labels = Tensor::empty({n}, DType::I32);
  for (std::int64_t i = 0; i < n; ++i)
    labels.data<std::int32_t>()[i] = static_cast<std::int32_t>(engine() % classes);
  return labels;
}

// A GPU tensor whose every byte is 0xFF: NaN as float32, -1 as integers, so an
// element the op forgot to write fails the comparison.
inline Tensor poisoned(const Shape& shape, DType dtype = DType::F32) {
  Tensor host = Tensor::empty(shape, dtype);
  std::memset(host.raw(), 0xFF, host.nbytes());
  return host.to(gpu());
}

inline std::vector<float> values_of(const Tensor& t) { return t.to(Device::cpu()).to_vector(); }

// Elementwise: |gpu - cpu| <= rtol * (|cpu| + 1) for every element (values of order
// one, so this is a relative tolerance with an absolute floor of rtol). NaN fails.
inline void expect_close(const Tensor& gpu_result, const Tensor& cpu_result, double rtol,
                         const std::string& what) {
  ASSERT_EQ(gpu_result.shape(), cpu_result.shape()) << what;
  const std::vector<float> g = values_of(gpu_result), c = values_of(cpu_result);
  std::int64_t bad = 0, first = -1;
  double worst = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double difference = std::fabs(static_cast<double>(g[i]) - c[i]);
    const double allowed = rtol * (std::fabs(static_cast<double>(c[i])) + 1.0);
    if (!(difference <= allowed)) {
      if (first < 0) first = static_cast<std::int64_t>(i);
      ++bad;
    }
    if (difference > worst) worst = difference;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.size() << " elements off by more than "
                    << rtol << " relative; first at " << first << " (gpu "
                    << (first >= 0 ? g[first] : 0) << ", cpu " << (first >= 0 ? c[first] : 0)
                    << "), largest difference " << worst;
}

// Bit for bit (the CUDA twin adds in the CPU's order, without FMA contraction).
inline void expect_equal(const Tensor& gpu_result, const Tensor& cpu_result,
                         const std::string& what) {
  ASSERT_EQ(gpu_result.shape(), cpu_result.shape()) << what;
  ASSERT_EQ(gpu_result.dtype(), cpu_result.dtype()) << what;
  const Tensor g = gpu_result.to(Device::cpu());
  const auto* a = static_cast<const unsigned char*>(g.raw());
  const auto* b = static_cast<const unsigned char*>(cpu_result.raw());
  const std::size_t width = size_of(g.dtype());
  std::int64_t bad = 0, first = -1;
  for (std::size_t i = 0; i < g.nbytes() / width; ++i)
    if (std::memcmp(a + i * width, b + i * width, width) != 0) {
      if (first < 0) first = static_cast<std::int64_t>(i);
      ++bad;
    }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.numel()
                    << " elements differ from the CPU twin; first at " << first;
}

// For bf16 arithmetic: ||gpu - cpu|| / ||cpu|| <= rtol over the whole tensor (single
// elements near zero carry the rounding of their large summands).
// `rounded`: the result must show bf16 rounding (false for results that no bf16
// product feeds, such as the last layer's bias gradient).
inline void expect_close_in_norm(const Tensor& gpu_result, const Tensor& cpu_result, double rtol,
                                 const std::string& what, bool rounded = true) {
  ASSERT_EQ(gpu_result.shape(), cpu_result.shape()) << what;
  const std::vector<float> g = values_of(gpu_result), c = values_of(cpu_result);
  double error = 0, norm = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    error += (static_cast<double>(g[i]) - c[i]) * (static_cast<double>(g[i]) - c[i]);
    norm += static_cast<double>(c[i]) * c[i];
  }
  const double relative = std::sqrt(error) / std::sqrt(norm);
  EXPECT_TRUE(relative <= rtol) << what << ": relative error " << relative << " above " << rtol;
  // float32 arithmetic differs from the CPU by ~1e-7; bf16 inputs (8 bits of
  // mantissa) by ~1e-3. Below 1e-5, the op did not round to bf16 at all.
  if (rounded) {
    EXPECT_GT(relative, 1e-5) << what << ": as close as float32, so bf16 was not used";
  }
}

}  // namespace kiln::ops::test
