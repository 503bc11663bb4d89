// cpu_model and engine_build (<kiln/machine.h>); the oneDNN answers live in
// ops/onednn.cpp, beside the library they ask.
#include <kiln/hash.h>
#include <kiln/machine.h>

#include <dlfcn.h>

#include <filesystem>
#include <fstream>

namespace kiln {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("model name")) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) return "";
      const auto start = line.find_first_not_of(" \t", colon + 1);
      return start == std::string::npos ? "" : line.substr(start);
    }
  return "";
}

std::string engine_build() {
  static const std::string hash = [] {
    Dl_info info{};
    if (::dladdr(reinterpret_cast<const void*>(&cpu_model), &info) == 0 ||
        info.dli_fname == nullptr)
      return std::string();
    try {
      return "sha256:" + sha256_file(std::filesystem::canonical(info.dli_fname));
    } catch (const std::exception&) {
      return std::string();
    }
  }();
  return hash;
}

}  // namespace kiln
