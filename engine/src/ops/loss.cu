// CUDA twins of the losses: kernels first, launchers after. A loss is one block:
// each warp takes rows (cross-entropy) or a stride of elements (MSE), computes in
// double as the CPU twin does, and the block adds its total to loss_sum[0] (and
// correct[0]) once, in a fixed order: no atomics, so the sum repeats run to run,
// and nothing is read back to the host. One block does the few thousand rows of a
// batch in microseconds; a loss over millions of rows would want a grid.
#include "ops/cuda_launch.cuh"
#include "ops/loss.h"

namespace kiln::ops {
namespace {

using cuda_detail::block_sum;

constexpr int kBlock = 1024;
constexpr int kWarps = kBlock / 32;

struct CrossEntropyArgs {
  std::int64_t batch, classes;
  double off_target, on_target;
  float grad_scale;
};

__global__ void __launch_bounds__(kBlock)
    softmax_cross_entropy_kernel(CrossEntropyArgs a, const float* __restrict__ logits,
                                 const std::int32_t* __restrict__ labels,
                                 float* __restrict__ dlogits, float* __restrict__ loss_sum,
                                 float* __restrict__ correct) {
  __shared__ double scratch[kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  double total = 0.0, hits = 0.0;
  for (std::int64_t row = warp; row < a.batch; row += kWarps) {
    const float* z = logits + row * a.classes;
    const std::int32_t label = labels[row];
    // The largest logit and its first position (std::max_element's tie rule).
    float best = z[0];
    std::int64_t best_at = 0;
    for (std::int64_t k = lane; k < a.classes; k += 32)
      if (z[k] > best || (z[k] == best && k < best_at)) best = z[k], best_at = k;
    for (int offset = 16; offset > 0; offset /= 2) {
      const float other = __shfl_xor_sync(0xffffffffu, best, offset);
      const std::int64_t other_at = __shfl_xor_sync(0xffffffffu, best_at, offset);
      if (other > best || (other == best && other_at < best_at)) best = other, best_at = other_at;
    }
    const double max = best;
    double sum = 0.0, sum_z = 0.0;
    for (std::int64_t k = lane; k < a.classes; k += 32) {
      sum += exp(z[k] - max);
      sum_z += z[k];
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      sum_z += __shfl_xor_sync(0xffffffffu, sum_z, offset);
    }
    const double log_sum = max + log(sum);
    if (lane == 0) {
      total += a.off_target * (static_cast<double>(a.classes) * log_sum - sum_z) +
               (a.on_target - a.off_target) * (log_sum - z[label]);
      hits += best_at == label ? 1.0 : 0.0;
    }
    if (dlogits == nullptr) continue;
    float* dz = dlogits + row * a.classes;
    for (std::int64_t k = lane; k < a.classes; k += 32) {
      const double target = k == label ? a.on_target : a.off_target;
      dz[k] = static_cast<float>((exp(z[k] - log_sum) - target) * a.grad_scale);
    }
  }
  // Only lane 0 of each warp holds a total; the block sum adds the warps in order.
  total = block_sum<kBlock>(total, scratch);
  hits = block_sum<kBlock>(hits, scratch);
  if (threadIdx.x != 0) return;
  loss_sum[0] += static_cast<float>(total);
  correct[0] += static_cast<float>(hits);
}

__global__ void __launch_bounds__(kBlock)
    mean_squared_error_kernel(std::int64_t n, std::int64_t features, float grad_scale,
                              const float* __restrict__ pred, const float* __restrict__ target,
                              float* __restrict__ dpred, float* __restrict__ loss_sum) {
  __shared__ double scratch[kWarps];
  double total = 0.0;
  for (std::int64_t i = threadIdx.x; i < n; i += kBlock) {
    const double difference = static_cast<double>(pred[i]) - target[i];
    total += difference * difference;
    if (dpred != nullptr)
      dpred[i] = static_cast<float>(2.0 * difference / static_cast<double>(features) * grad_scale);
  }
  total = block_sum<kBlock>(total, scratch);
  if (threadIdx.x == 0) loss_sum[0] += static_cast<float>(total / static_cast<double>(features));
}

}  // namespace

template <>
void SoftmaxCrossEntropy<DeviceType::CUDA>::run(const Tensor& logits, const Tensor& labels,
                                                float smoothing, float grad_scale, Tensor& dlogits,
                                                Tensor& loss_sum, Tensor& correct) {
  const std::int64_t classes = logits.dim(1);
  if (logits.dim(0) == 0 || classes == 0) return;
  const double off_target = smoothing / static_cast<double>(classes);
  const CrossEntropyArgs args{logits.dim(0), classes, off_target, 1.0 - smoothing + off_target,
                              grad_scale};
  softmax_cross_entropy_kernel<<<1, kBlock, 0, cuda::stream(logits.device())>>>(
      args, logits.data<float>(), labels.data<std::int32_t>(),
      dlogits.defined() ? dlogits.data<float>() : nullptr, loss_sum.data<float>(),
      correct.data<float>());
  cuda::check_launch("softmax_cross_entropy");
}

template <>
void MeanSquaredError<DeviceType::CUDA>::run(const Tensor& pred, const Tensor& target,
                                             float grad_scale, Tensor& dpred, Tensor& loss_sum) {
  if (pred.numel() == 0) return;
  mean_squared_error_kernel<<<1, kBlock, 0, cuda::stream(pred.device())>>>(
      pred.numel(), pred.numel() / pred.dim(0), grad_scale, pred.data<float>(),
      target.data<float>(), dpred.defined() ? dpred.data<float>() : nullptr,
      loss_sum.data<float>());
  cuda::check_launch("mean_squared_error");
}

}  // namespace kiln::ops
