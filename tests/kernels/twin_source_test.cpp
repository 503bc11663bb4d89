// The CPU and CUDA twins must not drift apart in source. Their arithmetic is
// written once, as KILN_HOST_DEVICE code in a shared header (ops/activation_math.h,
// kernels/philox.cuh, kernels/preprocess_sample.cuh), which both the CPU loop and
// the kernel call, and compiled without FMA contraction on both sides. These tests
// read the sources and fail when a kernel file grows its own formula (a math
// library call) or the build loses -ffp-contract=off / --fmad=false.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
const fs::path kSource = KILN_SOURCE_DIR;

std::string read(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The text without // and /* */ comments.
std::string code_of(const std::string& text) {
  static const std::regex comments(R"(//[^\n]*|/\*[\s\S]*?\*/)");
  return std::regex_replace(text, comments, "");
}

// Float math whose CPU and CUDA versions round differently or whose formula a
// kernel would otherwise restate.
const std::regex kMathCall(
    R"(\b(erff?|expf?|logf?|sqrtf?|rsqrtf|tanhf?|powf?|__expf|__logf|__powf|fmaf?)\s*\()");

// Kernel files whose formulas are still written twice (a .cpp and a .cu beside it),
// checked numerically by tests/ops_cuda instead. The list may only shrink: a new
// kernel takes its arithmetic from a shared header.
const std::set<std::string> kHandWrittenTwins = {"engine/src/ops/loss.cu", "engine/src/ops/norm.cu",
                                                 "engine/src/ops/optim.cu"};

TEST(TwinSource, KernelFilesCallNoMathOfTheirOwn) {
  std::set<std::string> with_math;
  for (const fs::path& folder : {kSource / "engine/src", kSource / "kernels"})
    for (const auto& entry : fs::recursive_directory_iterator(folder)) {
      if (entry.path().extension() != ".cu") continue;
      const std::string name = fs::relative(entry.path(), kSource).generic_string();
      if (std::regex_search(code_of(read(entry.path())), kMathCall)) with_math.insert(name);
    }
  EXPECT_EQ(with_math, kHandWrittenTwins)
      << "a kernel file computes a formula of its own: move it into a KILN_HOST_DEVICE "
         "function that the CPU twin calls too (ops/activation_math.h shows how)";
}

TEST(TwinSource, SharedArithmeticIsHostAndDeviceCode) {
  // Every function defined in a shared header (an inline function, a functor's
  // forward or backward) is KILN_HOST_DEVICE.
  static const std::regex function(
      R"(\binline\s+(?!constexpr)[\w:<>]+\s+\w+\s*\(|\bfloat\s+(forward|backward)\s*\()");
  for (const char* header : {"engine/src/ops/activation_math.h", "engine/src/ops/activation.h",
                             "kernels/philox.cuh", "kernels/preprocess_sample.cuh"}) {
    std::istringstream code(code_of(read(kSource / header)));
    std::size_t found = 0;
    for (std::string line; std::getline(code, line);)
      if (std::regex_search(line, function)) {
        ++found;
        EXPECT_NE(line.find("KILN_HOST_DEVICE"), std::string::npos) << header << ": " << line;
      }
    EXPECT_GT(found, 0u) << header;
  }
  // The CPU loop and the kernel call the same functor members.
  EXPECT_NE(read(kSource / "engine/src/ops/elementwise.h").find("f.forward(in[i])"),
            std::string::npos);
  EXPECT_NE(read(kSource / "engine/src/ops/activation.cu").find("f.forward(x[i])"),
            std::string::npos);
}

TEST(TwinSource, TwinCodeIsBuiltWithoutFmaContraction) {
  const std::string engine = read(kSource / "engine/CMakeLists.txt");
  const std::string kernels = read(kSource / "kernels/CMakeLists.txt");
  for (const std::string* cmake : {&engine, &kernels}) {
    EXPECT_NE(cmake->find("-ffp-contract=off"), std::string::npos);
    EXPECT_NE(cmake->find("--fmad=false"), std::string::npos);
  }
}

}  // namespace
}  // namespace kiln::test
