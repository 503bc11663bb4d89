// CUDA twins of the matrix products: GEMM through cuBLASLt, whose plan (layouts,
// operation and the heuristic's algorithm) is chosen once per shape and kept, so a
// training step asks cuBLASLt for nothing but the matmul; the bias of Linear rides
// in the matmul's epilogue. Kernels first (bias add, column sums), launchers after.
//
// Precision: F32 computes in float32 (CUBLAS_COMPUTE_32F, no TF32), so results
// match the CPU's OpenBLAS to float rounding; BF16 lets cuBLASLt round the inputs
// to bf16 and accumulate in float32 (CUBLAS_COMPUTE_32F_FAST_16BF), with float32
// tensors in and out: autocast without cast kernels or bf16 copies.
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "ops/cuda_launch.cuh"
#include "ops/gemm.h"
#include "ops/optim.h"

namespace kiln::ops {
namespace {

using cuda_detail::first_index;
using cuda_detail::grid_stride;
using cuda_detail::launch;

__global__ void bias_add_kernel(std::int64_t n, std::int64_t features, float* __restrict__ y,
                                const float* __restrict__ bias) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) y[i] += bias[i % features];
}

// Column sums of a [rows, features] matrix: 32 consecutive columns per block (so
// loads are coalesced), 8 row phases per column, combined in a fixed order.
constexpr int kColumns = 32, kRowPhases = 8;
__global__ void sum_rows_kernel(const float* __restrict__ dy, std::int64_t rows,
                                std::int64_t features, bool accumulate, float* __restrict__ out) {
  __shared__ float partial[kRowPhases][kColumns];
  const std::int64_t f = static_cast<std::int64_t>(blockIdx.x) * kColumns + threadIdx.x;
  float sum = 0.0f;
  if (f < features)
    for (std::int64_t r = threadIdx.y; r < rows; r += kRowPhases) sum += dy[r * features + f];
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || f >= features) return;
  float total = 0.0f;
  for (int phase = 0; phase < kRowPhases; ++phase) total += partial[phase][threadIdx.x];
  out[f] = accumulate ? out[f] + total : total;
}

// The largest power of two (up to 256) that divides a pointer: what cuBLASLt may
// assume about a matrix's alignment (row views of a tensor are less aligned than
// the allocator's blocks).
std::uint32_t alignment_of(const void* pointer) {
  const auto address = reinterpret_cast<std::uintptr_t>(pointer);
  std::uint32_t alignment = 256;
  while (alignment > 4 && address % alignment != 0) alignment /= 2;
  return alignment;
}

struct GemmPlan {
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algorithm{};
  bool bias_in_epilogue = false;
};

using PlanKey = std::tuple<int, std::int64_t, std::int64_t, std::int64_t, bool, bool, MathPrecision,
                           bool, std::uint32_t, std::uint32_t, std::uint32_t, std::uint32_t>;

struct Operands {
  // Column-major view of the row-major product c[m, n] = op(a) op(b):
  // c^T[n, m] = op(b)^T op(a)^T, so cuBLASLt's A is b's memory and its B is a's.
  const float* first;   // b
  const float* second;  // a
  float* out;           // c
  const float* bias;    // nullptr: none
};

// Tries to build the plan; false when cuBLASLt has no algorithm for it.
bool build_plan(cublasLtHandle_t handle, const PlanKey& key, const Operands& operands,
                GemmPlan& plan) {
  const auto [device, m, n, k, transpose_a, transpose_b, precision, with_bias, align_first,
              align_second, align_out, align_bias] = key;
  const cublasComputeType_t compute =
      precision == MathPrecision::BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
  cuda::check(cublasLtMatmulDescCreate(&plan.operation, compute, CUDA_R_32F),
              "cublasLtMatmulDescCreate");
  const cublasOperation_t op_first = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  cuda::check(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSA, &op_first,
                                             sizeof op_first),
              "cublasLtMatmulDescSetAttribute (transa)");
  cuda::check(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSB,
                                             &op_second, sizeof op_second),
              "cublasLtMatmulDescSetAttribute (transb)");
  if (with_bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    cuda::check(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                               &epilogue, sizeof epilogue),
                "cublasLtMatmulDescSetAttribute (epilogue)");
    cuda::check(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                               &operands.bias, sizeof operands.bias),
                "cublasLtMatmulDescSetAttribute (bias)");
  }
  // Stored shapes (column-major): b is [b1 rows, b0 columns], a likewise.
  const std::int64_t b_rows = transpose_b ? k : n, b_columns = transpose_b ? n : k;
  const std::int64_t a_rows = transpose_a ? m : k, a_columns = transpose_a ? k : m;
  cuda::check(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_32F, static_cast<std::uint64_t>(b_rows),
                                         static_cast<std::uint64_t>(b_columns), b_rows),
              "cublasLtMatrixLayoutCreate");
  cuda::check(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_32F, static_cast<std::uint64_t>(a_rows),
                                         static_cast<std::uint64_t>(a_columns), a_rows),
              "cublasLtMatrixLayoutCreate");
  cuda::check(cublasLtMatrixLayoutCreate(&plan.c, CUDA_R_32F, static_cast<std::uint64_t>(n),
                                         static_cast<std::uint64_t>(m), n),
              "cublasLtMatrixLayoutCreate");

  cublasLtMatmulPreference_t preference = nullptr;
  cuda::check(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
  const std::size_t workspace = cuda::kGemmWorkspaceBytes;
  const std::pair<cublasLtMatmulPreferenceAttributes_t, std::uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_first},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_second},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_out},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_out}};
  cuda::check(
      cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                           &workspace, sizeof workspace),
      "cublasLtMatmulPreferenceSetAttribute");
  for (const auto& [attribute, bytes] : alignments)
    cuda::check(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &bytes, sizeof bytes),
                "cublasLtMatmulPreferenceSetAttribute (alignment)");
  (void)device;
  (void)align_bias;  // in the key only: the heuristic reads the bias pointer itself
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      handle, plan.operation, plan.a, plan.b, plan.c, plan.c, preference, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatrixLayoutDestroy(plan.a);
    cublasLtMatrixLayoutDestroy(plan.b);
    cublasLtMatrixLayoutDestroy(plan.c);
    cublasLtMatmulDescDestroy(plan.operation);
    plan = {};
    return false;
  }
  plan.algorithm = result.algo;
  plan.bias_in_epilogue = with_bias;
  return true;
}

// The cached plan for this product (built on first use). Plans are never freed:
// a model has a handful of shapes.
const GemmPlan& plan_for(Device device, PlanKey key, const Operands& operands) {
  static std::mutex mutex;
  static auto* plans = new std::map<PlanKey, GemmPlan>();
  std::lock_guard lock(mutex);
  if (auto it = plans->find(key); it != plans->end()) return it->second;
  const cublasLtHandle_t handle = cuda::context(device).cublas_lt;
  GemmPlan plan;
  if (!build_plan(handle, key, operands, plan)) {
    // No epilogue algorithm for this shape: the bias gets its own kernel.
    if (std::get<7>(key)) {
      PlanKey plain = key;
      std::get<7>(plain) = false;
      std::get<11>(plain) = 0;
      if (build_plan(handle, plain, {operands.first, operands.second, operands.out, nullptr}, plan))
        return plans->emplace(key, plan).first->second;
    }
    throw StageError("cuBLASLt has no algorithm for a " + std::to_string(std::get<1>(key)) + "x" +
                     std::to_string(std::get<2>(key)) + "x" + std::to_string(std::get<3>(key)) +
                     " float32 GEMM on " + device.str());
  }
  return plans->emplace(key, plan).first->second;
}

}  // namespace

template <>
void BiasAdd<DeviceType::CUDA>::run(Tensor& y, const Tensor& bias) {
  launch("bias_add", y.device(), y.numel(), bias_add_kernel, bias.numel(), y.data<float>(),
         bias.data<float>());
}

template <>
void SumRows<DeviceType::CUDA>::run(const Tensor& dy, Tensor& out, bool accumulate) {
  const std::int64_t features = out.numel();
  if (features == 0) return;
  const std::int64_t rows = dy.numel() / features;
  const auto blocks = static_cast<unsigned>((features + kColumns - 1) / kColumns);
  sum_rows_kernel<<<blocks, dim3(kColumns, kRowPhases), 0, cuda::stream(dy.device())>>>(
      dy.data<float>(), rows, features, accumulate, out.data<float>());
  cuda::check_launch("sum_rows");
}

template <>
void Gemm<DeviceType::CUDA>::run(const Tensor& a, bool transpose_a, const Tensor& b,
                                 bool transpose_b, Tensor& c, float alpha, float beta,
                                 const Tensor& bias, MathPrecision precision) {
  const std::int64_t m = c.dim(0), n = c.dim(1);
  const std::int64_t k = transpose_a ? a.dim(0) : a.dim(1);
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: c = beta c (+ bias); cuBLASLt refuses k = 0
    if (beta == 0.0f)
      c.zero();
    else if (beta != 1.0f)
      Scale<DeviceType::CUDA>::run(c, beta);
    if (bias.defined()) BiasAdd<DeviceType::CUDA>::run(c, bias);
    return;
  }
  const Device device = c.device();
  const Operands operands{b.data<float>(), a.data<float>(), c.data<float>(),
                          bias.defined() ? bias.data<float>() : nullptr};
  const PlanKey key{device.index,
                    m,
                    n,
                    k,
                    transpose_a,
                    transpose_b,
                    precision,
                    bias.defined(),
                    alignment_of(operands.first),
                    alignment_of(operands.second),
                    alignment_of(operands.out),
                    bias.defined() ? alignment_of(operands.bias) : 0u};
  const GemmPlan& plan = plan_for(device, key, operands);
  // The bias pointer lives in the shared plan's descriptor: kiln runs one training
  // step at a time per device, so no other thread sets it between here and the
  // matmul's enqueue.
  if (plan.bias_in_epilogue)
    cuda::check(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                               &operands.bias, sizeof operands.bias),
                "cublasLtMatmulDescSetAttribute (bias)");
  const cuda::DeviceContext& context = cuda::context(device);
  void* workspace = cuda::workspace(device, cuda::kGemmWorkspaceBytes);
  cuda::check(
      cublasLtMatmul(context.cublas_lt, plan.operation, &alpha, operands.first, plan.a,
                     operands.second, plan.b, &beta, operands.out, plan.c, operands.out, plan.c,
                     &plan.algorithm, workspace, cuda::kGemmWorkspaceBytes, context.stream),
      "cublasLtMatmul");
  if (bias.defined() && !plan.bias_in_epilogue) BiasAdd<DeviceType::CUDA>::run(c, bias);
}

}  // namespace kiln::ops
