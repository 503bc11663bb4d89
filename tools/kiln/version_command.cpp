// kiln version: what this build is and what it can run on here.
#include "commands.h"

#include <kiln/device.h>
#include <kiln/plugin.h>
#include <kiln/version.h>

#include <fmt/format.h>

namespace kiln::cli {
namespace {

// One line per piece of CUDA software, so that a bug report shows what ran.
void print_cuda_versions() {
  const CudaVersions versions = cuda_versions();
  if (!versions.cuda_built) {
    fmt::print("CUDA: not built\n");
    return;
  }
  if (versions.driver.empty())
    fmt::print("CUDA driver: none ({})\n", versions.why_no_driver);
  else
    fmt::print("CUDA driver: {}\n", versions.driver);
  const auto known = [](const std::string& version) {
    return version.empty() ? "unknown" : version;
  };
  fmt::print("CUDA runtime: {}\ncuDNN: {}\ncuBLASLt: {}\nNCCL: {}\n", known(versions.runtime),
             known(versions.cudnn), known(versions.cublas_lt), known(versions.nccl));
}

void print_version() {
  fmt::print("kiln {}\nplugin ABI {}\nbuilt with {}\n", KILN_VERSION, KILN_ABI_VERSION,
             KILN_BUILD_COMPILER);
  print_cuda_versions();
  const DeviceReport devices = probe_devices();
  if (!devices.cuda_built) return;
  if (devices.devices.empty())
    fmt::print("devices: none ({}); stages run on the CPU\n", devices.why_none);
  for (const auto& device : devices.devices)
    fmt::print("device cuda:{}: {} (sm_{}{}, {:.1f} GiB)\n", device.index, device.name,
               device.compute_major, device.compute_minor,
               static_cast<double>(device.memory_bytes) / (1u << 30));
}

}  // namespace

void add_version_command(CLI::App& app) {
  app.add_subcommand("version", "Version, plugin ABI, CUDA devices")->callback([] {
    print_version();
  });
}

}  // namespace kiln::cli
