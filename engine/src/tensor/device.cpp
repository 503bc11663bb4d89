#include <kiln/error.h>
#include <kiln/tensor/device.h>

#include <charconv>

namespace kiln {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.starts_with("cuda:")) {
    const std::string_view digits = text.substr(5);
    int index = -1;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (error == std::errc() && end == digits.data() + digits.size() && index >= 0)
      return cuda(index);
  }
  throw ConfigError("device '" + std::string(text) + "': expected cpu, cuda or cuda:<index>");
}

}  // namespace kiln
