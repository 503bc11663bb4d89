// Device probe through the CUDA runtime (linked statically, so kiln starts on
// machines without a driver; the calls below then report why there is no GPU).
#ifdef KILN_HAVE_CUDA
#include <kiln/device.h>

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <nccl.h>

#include <fmt/format.h>

namespace kiln {
namespace {

// CUDA's encoding, 1000 * major + 10 * minor (13000 is 13.0).
std::string cuda_version(int version) {
  return fmt::format("{}.{}", version / 1000, version % 1000 / 10);
}

// cuDNN 9, cuBLAS and NCCL since 2.9 all encode 10000 * major + 100 * minor + patch.
std::string library_version(std::size_t version) {
  return fmt::format("{}.{}.{}", version / 10000, version % 10000 / 100, version % 100);
}

}  // namespace

DeviceReport probe_devices() {
  DeviceReport report;
  report.cuda_built = true;
  cudaRuntimeGetVersion(&report.runtime_version);
  if (cudaDriverGetVersion(&report.driver_version) != cudaSuccess) report.driver_version = 0;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    report.why_none = cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error for later callers
    return report;
  }
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, index) != cudaSuccess) continue;
    report.devices.push_back(
        {index, properties.name, properties.major, properties.minor, properties.totalGlobalMem});
  }
  if (report.devices.empty()) report.why_none = "no CUDA device found";
  return report;
}

CudaVersions cuda_versions() {
  CudaVersions versions;
  versions.cuda_built = true;
  int runtime = 0;
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) versions.runtime = cuda_version(runtime);
  // cudaDriverGetVersion gives 0 when libcuda is not installed (the runtime's own
  // message then, "driver version is insufficient", would mislead).
  int driver = 0;
  const cudaError_t status = cudaDriverGetVersion(&driver);
  if (status == cudaSuccess && driver > 0)
    versions.driver = cuda_version(driver);
  else if (status == cudaSuccess)
    versions.why_no_driver = "no NVIDIA driver (libcuda.so) is installed";
  else
    versions.why_no_driver = cudaGetErrorString(status);
  cudaGetLastError();  // clear a failed call's error for later callers
  versions.cudnn = library_version(cudnnGetVersion());
  versions.cublas_lt = library_version(cublasLtGetVersion());
  if (int nccl = 0; ncclGetVersion(&nccl) == ncclSuccess)
    versions.nccl = library_version(static_cast<std::size_t>(nccl));
  return versions;
}

}  // namespace kiln
#endif
