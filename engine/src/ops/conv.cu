// CUDA twin of Conv2d through cuDNN 9's convolution API (forward, backward data,
// backward filter). Descriptors and algorithms are chosen once per geometry and
// kept. Kernels first (bias, bias gradient, bf16 casts), launchers after.
//
// Precision: F32 runs cuDNN with CUDNN_FMA_MATH, which rules out TF32 tensor cores
// (allowed by CUDNN_DEFAULT_MATH on sm_80+), so results match the CPU's oneDNN to
// float rounding. BF16 (autocast) casts x, w and dy to bf16, convolves with float
// accumulation on tensor cores, and casts the results back to float32: y and dx
// are float32 tensors, dw accumulates into the float32 master gradient. The bias
// and its gradient stay float32.
#include <cuda_bf16.h>

#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "ops/conv.h"
#include "ops/cuda_launch.cuh"

namespace kiln::ops {
namespace {

using cuda_detail::first_index;
using cuda_detail::grid_stride;
using cuda_detail::launch;

constexpr int kReduceThreads = 256;

// y[n, o, s] += bias[o] over an NCHW output with `plane` = H x W.
__global__ void conv_bias_kernel(std::int64_t count, std::int64_t channels, std::int64_t plane,
                                 float* __restrict__ y, const float* __restrict__ bias) {
  for (std::int64_t i = first_index(); i < count; i += grid_stride())
    y[i] += bias[(i / plane) % channels];
}

// db[o] += sum over n and s of dy[n, o, s]: one block per channel, in a fixed order.
__global__ void __launch_bounds__(kReduceThreads)
    conv_bias_grad_kernel(const float* __restrict__ dy, std::int64_t batch, std::int64_t channels,
                          std::int64_t plane, float* __restrict__ db) {
  __shared__ double scratch[kReduceThreads / 32];
  const std::int64_t o = blockIdx.x;
  double sum = 0.0;
  for (std::int64_t j = threadIdx.x; j < batch * plane; j += kReduceThreads)
    sum += dy[((j / plane) * channels + o) * plane + j % plane];
  const double total = cuda_detail::block_sum<kReduceThreads>(sum, scratch);
  if (threadIdx.x == 0) db[o] += static_cast<float>(total);
}

__global__ void to_bf16_kernel(std::int64_t n, const float* __restrict__ in,
                               __nv_bfloat16* __restrict__ out) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) out[i] = __float2bfloat16(in[i]);
}

__global__ void from_bf16_kernel(std::int64_t n, const __nv_bfloat16* __restrict__ in,
                                 bool accumulate, float* __restrict__ out) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const float value = __bfloat162float(in[i]);
    out[i] = accumulate ? out[i] + value : value;
  }
}

__nv_bfloat16* bf16_data(Tensor& t) { return static_cast<__nv_bfloat16*>(t.raw()); }
const __nv_bfloat16* bf16_data(const Tensor& t) {
  return static_cast<const __nv_bfloat16*>(t.raw());
}

Tensor to_bf16(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), DType::BF16, x.device());
  launch("conv_to_bf16", x.device(), x.numel(), to_bf16_kernel, x.data<float>(), bf16_data(out));
  return out;
}

void from_bf16(const Tensor& in, Tensor& out, bool accumulate) {
  launch("conv_from_bf16", out.device(), out.numel(), from_bf16_kernel, bf16_data(in), accumulate,
         out.data<float>());
}

// Everything cuDNN needs for one geometry and precision.
struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t forward{};
  cudnnConvolutionBwdDataAlgo_t backward_data{};
  cudnnConvolutionBwdFilterAlgo_t backward_filter{};
  std::size_t forward_bytes = 0, backward_data_bytes = 0, backward_filter_bytes = 0;
};

using PlanKey = std::tuple<int, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                           std::int64_t, std::int64_t, std::int64_t, std::int64_t, MathPrecision>;

// Workspace above this is not worth its memory for kiln's models.
constexpr std::size_t kMaxWorkspaceBytes = std::size_t{1} << 30;

// The first of cuDNN's heuristic ranking that works within the workspace limit
// and, for F32, without tensor-core (TF32) math.
template <class Perf>
const Perf* pick(const Perf* results, int count, MathPrecision precision) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > kMaxWorkspaceBytes) continue;
    if (precision == MathPrecision::F32 &&
        (r.mathType == CUDNN_TENSOR_OP_MATH || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
      continue;
    return &r;
  }
  return nullptr;
}

[[noreturn]] void no_algorithm(const char* which, const Conv2dGeometry& g) {
  throw StageError(std::string("cuDNN offers no ") + which + " algorithm for conv2d " +
                   std::to_string(g.in_channels) + "->" + std::to_string(g.out_channels) +
                   " kernel " + std::to_string(g.kernel) + " on " + std::to_string(g.height) + "x" +
                   std::to_string(g.width));
}

ConvPlan build_plan(cudnnHandle_t handle, const Conv2dGeometry& g, MathPrecision precision) {
  const cudnnDataType_t data =
      precision == MathPrecision::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  auto dim = [](std::int64_t v) { return static_cast<int>(v); };
  ConvPlan p;
  cuda::check(cudnnCreateTensorDescriptor(&p.x), "cudnnCreateTensorDescriptor");
  cuda::check(cudnnCreateTensorDescriptor(&p.y), "cudnnCreateTensorDescriptor");
  cuda::check(cudnnCreateFilterDescriptor(&p.w), "cudnnCreateFilterDescriptor");
  cuda::check(cudnnCreateConvolutionDescriptor(&p.conv), "cudnnCreateConvolutionDescriptor");
  cuda::check(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, data, dim(g.batch),
                                         dim(g.in_channels), dim(g.height), dim(g.width)),
              "cudnnSetTensor4dDescriptor (x)");
  cuda::check(
      cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, data, dim(g.batch), dim(g.out_channels),
                                 dim(g.out_height()), dim(g.out_width())),
      "cudnnSetTensor4dDescriptor (y)");
  cuda::check(cudnnSetFilter4dDescriptor(p.w, data, CUDNN_TENSOR_NCHW, dim(g.out_channels),
                                         dim(g.in_channels), dim(g.kernel), dim(g.kernel)),
              "cudnnSetFilter4dDescriptor");
  cuda::check(cudnnSetConvolution2dDescriptor(p.conv, dim(g.padding), dim(g.padding), dim(g.stride),
                                              dim(g.stride), 1, 1, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT),
              "cudnnSetConvolution2dDescriptor");
  cuda::check(cudnnSetConvolutionMathType(
                  p.conv, precision == MathPrecision::BF16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH),
              "cudnnSetConvolutionMathType");

  int count = 0;
  cudnnConvolutionFwdAlgoPerf_t forward[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  cuda::check(cudnnGetConvolutionForwardAlgorithm_v7(
                  handle, p.x, p.w, p.conv, p.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, forward),
              "cudnnGetConvolutionForwardAlgorithm_v7");
  const auto* f = pick(forward, count, precision);
  if (f == nullptr) no_algorithm("forward", g);
  p.forward = f->algo;
  p.forward_bytes = f->memory;

  cudnnConvolutionBwdDataAlgoPerf_t data_results[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  cuda::check(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, p.w, p.y, p.conv, p.x,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                          &count, data_results),
              "cudnnGetConvolutionBackwardDataAlgorithm_v7");
  const auto* d = pick(data_results, count, precision);
  if (d == nullptr) no_algorithm("backward-data", g);
  p.backward_data = d->algo;
  p.backward_data_bytes = d->memory;

  cudnnConvolutionBwdFilterAlgoPerf_t filter_results[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  cuda::check(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, p.x, p.y, p.conv, p.w,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                            &count, filter_results),
              "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
  const auto* w = pick(filter_results, count, precision);
  if (w == nullptr) no_algorithm("backward-filter", g);
  p.backward_filter = w->algo;
  p.backward_filter_bytes = w->memory;
  return p;
}

// The cached plan of a geometry (built on first use, never freed: a model has a
// handful of geometries).
const ConvPlan& plan_for(Device device, const Conv2dGeometry& g, MathPrecision precision) {
  static std::mutex mutex;
  static auto* plans = new std::map<PlanKey, ConvPlan>();
  const PlanKey key{device.index,   g.batch,  g.in_channels, g.height,  g.width,
                    g.out_channels, g.kernel, g.stride,      g.padding, precision};
  std::lock_guard lock(mutex);
  auto it = plans->find(key);
  if (it == plans->end())
    it = plans->emplace(key, build_plan(cuda::cudnn(device), g, precision)).first;
  return it->second;
}

void add_bias(const Conv2dGeometry& g, const Tensor& bias, Tensor& y) {
  launch("conv_bias", y.device(), y.numel(), conv_bias_kernel, g.out_channels,
         g.out_height() * g.out_width(), y.data<float>(), bias.data<float>());
}

}  // namespace

template <>
void Conv2d<DeviceType::CUDA>::forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                       const Tensor& bias, Tensor& y, MathPrecision precision) {
  if (g.batch == 0) return;
  const Device device = x.device();
  const ConvPlan& p = plan_for(device, g, precision);
  const cudnnHandle_t handle = cuda::cudnn(device);
  void* workspace = cuda::workspace(device, p.forward_bytes);
  const float one = 1.0f, zero = 0.0f;
  if (precision == MathPrecision::BF16) {
    const Tensor xb = to_bf16(x), wb = to_bf16(w);
    Tensor yb = Tensor::empty(y.shape(), DType::BF16, device);
    cuda::check(
        cudnnConvolutionForward(handle, &one, p.x, xb.raw(), p.w, wb.raw(), p.conv, p.forward,
                                workspace, p.forward_bytes, &zero, p.y, yb.raw()),
        "cudnnConvolutionForward (bf16)");
    from_bf16(yb, y, false);
  } else {
    cuda::check(cudnnConvolutionForward(handle, &one, p.x, x.raw(), p.w, w.raw(), p.conv, p.forward,
                                        workspace, p.forward_bytes, &zero, p.y, y.raw()),
                "cudnnConvolutionForward");
  }
  if (bias.defined()) add_bias(g, bias, y);
}

template <>
void Conv2d<DeviceType::CUDA>::backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                        const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& db,
                                        MathPrecision precision) {
  if (g.batch == 0) return;
  const Device device = x.device();
  const ConvPlan& p = plan_for(device, g, precision);
  const cudnnHandle_t handle = cuda::cudnn(device);
  const float one = 1.0f, zero = 0.0f;
  if (precision == MathPrecision::BF16) {
    const Tensor dyb = to_bf16(dy);
    if (dx.defined()) {
      const Tensor wb = to_bf16(w);
      Tensor dxb = Tensor::empty(dx.shape(), DType::BF16, device);
      void* workspace = cuda::workspace(device, p.backward_data_bytes);
      cuda::check(cudnnConvolutionBackwardData(handle, &one, p.w, wb.raw(), p.y, dyb.raw(), p.conv,
                                               p.backward_data, workspace, p.backward_data_bytes,
                                               &zero, p.x, dxb.raw()),
                  "cudnnConvolutionBackwardData (bf16)");
      from_bf16(dxb, dx, false);
    }
    const Tensor xb = to_bf16(x);
    Tensor dwb = Tensor::empty(dw.shape(), DType::BF16, device);
    void* workspace = cuda::workspace(device, p.backward_filter_bytes);
    cuda::check(cudnnConvolutionBackwardFilter(handle, &one, p.x, xb.raw(), p.y, dyb.raw(), p.conv,
                                               p.backward_filter, workspace,
                                               p.backward_filter_bytes, &zero, p.w, dwb.raw()),
                "cudnnConvolutionBackwardFilter (bf16)");
    from_bf16(dwb, dw, true);
  } else {
    if (dx.defined()) {
      void* workspace = cuda::workspace(device, p.backward_data_bytes);
      cuda::check(cudnnConvolutionBackwardData(handle, &one, p.w, w.raw(), p.y, dy.raw(), p.conv,
                                               p.backward_data, workspace, p.backward_data_bytes,
                                               &zero, p.x, dx.raw()),
                  "cudnnConvolutionBackwardData");
    }
    void* workspace = cuda::workspace(device, p.backward_filter_bytes);
    // beta = 1: the gradient accumulates over micro-batches.
    cuda::check(cudnnConvolutionBackwardFilter(handle, &one, p.x, x.raw(), p.y, dy.raw(), p.conv,
                                               p.backward_filter, workspace,
                                               p.backward_filter_bytes, &one, p.w, dw.raw()),
                "cudnnConvolutionBackwardFilter");
  }
  if (db.defined()) {
    conv_bias_grad_kernel<<<static_cast<unsigned>(g.out_channels), kReduceThreads, 0,
                            cuda::stream(device)>>>(dy.data<float>(), g.batch, g.out_channels,
                                                    g.out_height() * g.out_width(),
                                                    db.data<float>());
    cuda::check_launch("conv_bias_grad");
  }
}

}  // namespace kiln::ops
