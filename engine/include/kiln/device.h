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

}  // namespace kiln
