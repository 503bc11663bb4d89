// CUDA twins of the optimizer updates and of gradient clipping's reductions:
// kernels first, launchers after. The updates are one multi-tensor kernel (as
// PyTorch's foreach/fused optimizers): a table of up to kTableSize tensors travels
// in the kernel's parameters, threads stride over the tensors' concatenated
// elements, and a single-tensor step is a table of one. Built with --fmad=false and
// IEEE sqrt/division (nvcc's defaults), each element gets the CPU twin's bits.
#include "ops/clip.cuh"
#include "ops/cuda_launch.cuh"
#include "ops/optim.h"
#include "ops/step_kernels.h"

namespace kiln::ops {
namespace {

using cuda_detail::block_sum;
using cuda_detail::first_index;
using cuda_detail::grid_stride;

// 48 tensors: 1.9 KiB of kernel parameters, under the classic 4 KiB limit.
constexpr int kTableSize = 48;

struct TensorTable {
  int count = 0;
  std::int64_t offset[kTableSize + 1] = {};  // start of tensor t in the concatenation
  float* value[kTableSize] = {};
  const float* grad[kTableSize] = {};
  float* state0[kTableSize] = {};
  float* state1[kTableSize] = {};
};

__device__ inline void sgd_update(const SgdScalars& s, float& value, float grad, float* buffer) {
  float d = grad;
  if (s.weight_decay != 0.0f) d += s.weight_decay * value;  // torch skips a zero decay
  if (s.momentum) {
    *buffer = flush_subnormal(s.buffer_momentum * *buffer + d);
    d = s.nesterov ? d + s.nesterov_momentum * *buffer : *buffer;
  }
  value -= s.lr * d;
}

__device__ inline void adamw_update(const AdamWScalars& c, float& value, float grad, float& m,
                                    float& v) {
  value *= c.decay;
  m = flush_subnormal(m * c.beta1 + c.one_minus_beta1 * grad);
  v = flush_subnormal(v * c.beta2 + c.one_minus_beta2 * grad * grad);
  const float denominator = sqrtf(v) / c.correction2_sqrt + c.eps;
  value -= c.step_size * (m / denominator);
}

// Threads walk the concatenation in increasing order, so each finds its tensor by
// moving forward from the last one.
template <class Update>
__device__ void for_each_element(const TensorTable& table, Update update) {
  const std::int64_t total = table.offset[table.count];
  int t = 0;
  for (std::int64_t i = first_index(); i < total; i += grid_stride()) {
    while (table.offset[t + 1] <= i) ++t;
    update(t, i - table.offset[t]);
  }
}

__global__ void sgd_kernel(SgdScalars s, TensorTable table) {
  for_each_element(table, [&](int t, std::int64_t k) {
    sgd_update(s, table.value[t][k], table.grad[t][k], s.momentum ? table.state0[t] + k : nullptr);
  });
}

__global__ void adamw_kernel(AdamWScalars c, TensorTable table) {
  for_each_element(table, [&](int t, std::int64_t k) {
    adamw_update(c, table.value[t][k], table.grad[t][k], table.state0[t][k], table.state1[t][k]);
  });
}

constexpr int kReduceThreads = 512;

// Per-block partial sums of x^2 in double, then one block adds them in order.
__global__ void __launch_bounds__(kReduceThreads)
    sum_squares_partial_kernel(std::int64_t n, const float* __restrict__ x,
                               double* __restrict__ partial) {
  __shared__ double scratch[kReduceThreads / 32];
  double sum = 0.0;
  for (std::int64_t i = first_index(); i < n; i += grid_stride())
    sum += static_cast<double>(x[i]) * x[i];
  sum = block_sum<kReduceThreads>(sum, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

__global__ void __launch_bounds__(kReduceThreads)
    sum_squares_final_kernel(int blocks, const double* __restrict__ partial,
                             float* __restrict__ out) {
  __shared__ double scratch[kReduceThreads / 32];
  double sum = 0.0;
  for (int b = threadIdx.x; b < blocks; b += kReduceThreads) sum += partial[b];
  sum = block_sum<kReduceThreads>(sum, scratch);
  if (threadIdx.x == 0) out[0] += static_cast<float>(sum);
}

__global__ void scale_kernel(std::int64_t n, float factor, float* __restrict__ x) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) x[i] *= factor;
}

__global__ void clip_kernel(std::int64_t n, const float* __restrict__ sum_squares, float max_norm,
                            float* __restrict__ x) {
  const double coefficient = clip_coefficient(*sum_squares, max_norm);
  if (coefficient >= 1.0) return;
  const auto factor = static_cast<float>(coefficient);
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) x[i] *= factor;
}

__global__ void add_norm_kernel(const float* __restrict__ sum_squares, float* __restrict__ out) {
  out[0] += static_cast<float>(sqrt(static_cast<double>(*sum_squares)));
}

// Launches `kernel` over `updates` in tables of kTableSize tensors.
template <class Scalars>
void launch_tables(const char* name, void (*kernel)(Scalars, TensorTable), const Scalars& scalars,
                   const std::vector<ParameterUpdate>& updates, bool with_state0,
                   bool with_state1) {
  if (updates.empty()) return;
  // A replayed graph of the step takes this step's scalars here.
  const StepParameter parameter = step_parameter<Scalars>(kernel, "scalars");
  if (StepKernelLog::defer(parameter, &scalars)) return;
  const Device device = updates.front().value->device();
  const cudaStream_t stream = cuda::stream(device);
  for (std::size_t first = 0; first < updates.size(); first += kTableSize) {
    TensorTable table;
    for (std::size_t u = first; u < updates.size() && table.count < kTableSize; ++u) {
      const ParameterUpdate& p = updates[u];
      const int t = table.count++;
      table.value[t] = p.value->data<float>();
      table.grad[t] = p.grad->data<float>();
      if (with_state0) table.state0[t] = p.state[0]->data<float>();
      if (with_state1) table.state1[t] = p.state[1]->data<float>();
      table.offset[t + 1] = table.offset[t] + p.value->numel();
    }
    const std::int64_t total = table.offset[table.count];
    if (total == 0) continue;
    kernel<<<cuda::grid_for(device, total, cuda_detail::kThreads), cuda_detail::kThreads, 0,
             stream>>>(scalars, table);
    cuda::check_launch(name);
    StepKernelLog::launched(parameter, stream);
  }
}

}  // namespace

template <>
void SgdMultiStep<DeviceType::CUDA>::run(const SgdScalars& s,
                                         const std::vector<ParameterUpdate>& updates) {
  launch_tables("sgd_step", sgd_kernel, s, updates, s.momentum, false);
}

template <>
void AdamWMultiStep<DeviceType::CUDA>::run(const AdamWScalars& s,
                                           const std::vector<ParameterUpdate>& updates) {
  launch_tables("adamw_step", adamw_kernel, s, updates, true, true);
}

template <>
void SgdStep<DeviceType::CUDA>::run(const SgdScalars& s, Tensor& value, const Tensor& grad,
                                    Tensor& buffer) {
  SgdMultiStep<DeviceType::CUDA>::run(s, {{&value, &grad, {&buffer, nullptr}}});
}

template <>
void AdamWStep<DeviceType::CUDA>::run(const AdamWScalars& s, Tensor& value, const Tensor& grad,
                                      Tensor& m, Tensor& v) {
  AdamWMultiStep<DeviceType::CUDA>::run(s, {{&value, &grad, {&m, &v}}});
}

template <>
void SumSquares<DeviceType::CUDA>::run(const Tensor& x, Tensor& out) {
  const std::int64_t n = x.numel();
  if (n == 0) return;
  const Device device = x.device();
  const unsigned blocks = cuda::grid_for(device, n, kReduceThreads);
  Tensor partial = Tensor::empty({static_cast<std::int64_t>(blocks)}, DType::F64, device);
  const cudaStream_t stream = cuda::stream(device);
  sum_squares_partial_kernel<<<blocks, kReduceThreads, 0, stream>>>(n, x.data<float>(),
                                                                    partial.data<double>());
  cuda::check_launch("sum_squares_partial");
  sum_squares_final_kernel<<<1, kReduceThreads, 0, stream>>>(
      static_cast<int>(blocks), partial.data<double>(), out.data<float>());
  cuda::check_launch("sum_squares_final");
}

template <>
void Scale<DeviceType::CUDA>::run(Tensor& x, float factor) {
  cuda_detail::launch("scale", x.device(), x.numel(), scale_kernel, factor, x.data<float>());
}

template <>
void ClipByNorm<DeviceType::CUDA>::run(Tensor& x, const Tensor& sum_squares, float max_norm) {
  cuda_detail::launch("clip_by_norm", x.device(), x.numel(), clip_kernel, sum_squares.data<float>(),
                      max_norm, x.data<float>());
}

template <>
void AddNorm<DeviceType::CUDA>::run(const Tensor& sum_squares, Tensor& out) {
  add_norm_kernel<<<1, 1, 0, cuda::stream(out.device())>>>(sum_squares.data<float>(),
                                                           out.data<float>());
  cuda::check_launch("add_norm");
}

}  // namespace kiln::ops
