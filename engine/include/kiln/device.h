// What compute devices this process can use. A build without CUDA, a machine
// without a driver or without a GPU all report zero CUDA devices with the reason;
// nothing here fails.
#pragma once

#include <string>
#include <vector>

namespace kiln {

struct CudaDevice {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  std::size_t memory_bytes = 0;
};

struct DeviceReport {
  bool cuda_built = false;  // kiln was compiled with the CUDA backend
  int runtime_version = 0;  // CUDA runtime kiln was built with, e.g. 13000
  int driver_version = 0;   // 0 when no driver is installed
  std::vector<CudaDevice> devices;
  std::string why_none;  // set when devices is empty
};

DeviceReport probe_devices();

// The CUDA software this process runs with, each as "major.minor[.patch]", for
// `kiln version` and bug reports. Asking loads no GPU and needs no driver: the
// runtime is linked into kiln, and cuDNN, cuBLASLt and NCCL say their versions
// without one.
struct CudaVersions {
  bool cuda_built = false;    // false: the rest is empty
  std::string driver;         // empty when there is no usable driver
  std::string why_no_driver;  // then: why
  std::string runtime;
  std::string cudnn, cublas_lt, nccl;  // the libraries loaded, not the headers built with
};

CudaVersions cuda_versions();

}  // namespace kiln
