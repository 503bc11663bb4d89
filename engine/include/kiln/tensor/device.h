// Where a tensor's memory lives and where its ops run.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

enum class DeviceType : unsigned char { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;

  std::string str() const;  // "cpu", "cuda:0"
  // "cpu", "cuda", "cuda:N"; ConfigError otherwise.
  static Device parse(std::string_view text);
};

}  // namespace kiln
