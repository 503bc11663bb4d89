// Device probe for a build without the CUDA backend.
#ifndef KILN_HAVE_CUDA
#include <kiln/device.h>

namespace kiln {

DeviceReport probe_devices() {
  DeviceReport report;
  report.why_none = "kiln was built without CUDA (-DKILN_CUDA=OFF)";
  return report;
}

CudaVersions cuda_versions() { return {}; }

}  // namespace kiln
#endif
