// kiln version: what this build is and what it can run on here.
#include "commands.h"

#include <kiln/device.h>
#include <kiln/plugin.h>
#include <kiln/version.h>

#include <fmt/format.h>

namespace kiln::cli {
namespace {

std::string cuda_version(int version) {
  return fmt::format("{}.{}", version / 1000, version % 1000 / 10);
}

void print_version() {
  fmt::print("kiln {}\nplugin ABI {}\nbuilt with {}\n", KILN_VERSION, KILN_ABI_VERSION,
             KILN_BUILD_COMPILER);
  const DeviceReport devices = probe_devices();
  if (!devices.cuda_built) {
    fmt::print("cuda: not built ({})\n", devices.why_none);
    return;
  }
  fmt::print("cuda runtime {}, driver {}\n", cuda_version(devices.runtime_version),
             devices.driver_version > 0 ? cuda_version(devices.driver_version) : "none");
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
