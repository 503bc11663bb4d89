// Device probe through the CUDA runtime (linked statically, so kiln starts on
// machines without a driver; the calls below then report why there is no GPU).
#ifdef KILN_HAVE_CUDA
#include <kiln/device.h>

#include <cuda_runtime_api.h>

namespace kiln {

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

}  // namespace kiln
#endif
