// Integration: the real Fashion-MNIST training set (Debian's dataset-fashion-mnist)
// imported into a dataset version, then opened by h5py, an independent reader.
#include <kiln/data/dataset.h>
#include <kiln/data/idx.h>
#include <kiln/hash.h>

#include "data/data_test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

const fs::path kFashionMnist = "/usr/share/datasets/fashion-mnist";

// Prints, as one JSON object, what h5py sees of each array and the root attributes;
// the SHA-256 is of the array's C-ordered bytes.
constexpr const char* kInspectScript = R"(
import hashlib, json, sys
import h5py
report = {}
with h5py.File(sys.argv[1], "r") as f:
    report["attrs"] = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
    for name in ("x", "y"):
        d = f[name]
        report[name] = {"shape": list(d.shape), "dtype": str(d.dtype), "chunks": list(d.chunks),
                        "compression": d.compression, "level": d.compression_opts,
                        "shuffle": d.shuffle,
                        "sha256": hashlib.sha256(d[...].tobytes()).hexdigest()}
print(json.dumps(report))
)";

std::string python_with_h5py() {
  for (const char* python : {"/usr/bin/python3", KILN_PYTHON})
    if (fs::exists(python) &&
        std::system((std::string(python) + " -c 'import h5py' >/dev/null 2>&1").c_str()) == 0)
      return python;
  return {};
}

std::string run_and_capture(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return {};
  std::string output;
  std::array<char, 4096> buffer;
  for (std::size_t got; (got = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0;)
    output.append(buffer.data(), got);
  return output;
}

std::string sha256_of(const Array& array) {
  return sha256_hex(
      std::string_view(reinterpret_cast<const char*>(array.bytes.data()), array.bytes.size()));
}

TEST(FashionMnist, ImportsTheTrainingSetAndH5pyReadsItBack) {
  const fs::path images_file = kFashionMnist / "train-images-idx3-ubyte.gz";
  const fs::path labels_file = kFashionMnist / "train-labels-idx1-ubyte.gz";
  if (!fs::exists(images_file) || !fs::exists(labels_file))
    GTEST_FAIL() << "Fashion-MNIST is not installed in " << kFashionMnist
                 << " (Debian package dataset-fashion-mnist)";
  const std::string python = python_with_h5py();
  if (python.empty()) GTEST_FAIL() << "no python3 with h5py (Debian package python3-h5py)";

  Array images = read_idx(images_file);
  Array labels = read_idx(labels_file);
  ASSERT_EQ(images.dtype, DType::U8);
  ASSERT_EQ(images.shape, (std::vector<std::int64_t>{60000, 28, 28}));
  ASSERT_EQ(labels.dtype, DType::U8);
  ASSERT_EQ(labels.shape, (std::vector<std::int64_t>{60000}));
  std::array<int, 256> per_class{};
  for (const std::uint8_t label : labels.bytes) ++per_class[label];
  for (int label = 0; label < 10; ++label) EXPECT_EQ(per_class[label], 6000) << label;
  images.name = "x";
  labels.name = "y";

  ScratchDir registry;
  const DatasetVersion version =
      DatasetStore(registry.path())
          .put("fashion-mnist-train", {images, labels}, {{"images", images_file.string()}});
  EXPECT_EQ(read_array(version.file, "x").bytes, images.bytes);

  const fs::path script = registry / "h5py_report.py";
  std::ofstream(script) << kInspectScript;
  const std::string output =
      run_and_capture(python + " " + script.string() + " " + version.file.string() + " 2>&1");
  const auto report = nlohmann::json::parse(output, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << "h5py script printed: " << output;

  EXPECT_EQ(report["attrs"]["kiln.format"], "kiln-dataset-1");
  EXPECT_EQ(report["attrs"]["kiln.id"], version.id);
  EXPECT_EQ(report["attrs"]["kiln.name"], "fashion-mnist-train");
  EXPECT_EQ(nlohmann::json::parse(report["attrs"]["kiln.source"].get<std::string>()),
            version.source);
  const auto& x = report["x"];
  EXPECT_EQ(x["shape"], nlohmann::json({60000, 28, 28}));
  EXPECT_EQ(x["dtype"], "uint8");
  EXPECT_EQ(x["sha256"], sha256_of(images));
  EXPECT_EQ(x["chunks"], nlohmann::json({668, 28, 28}));
  EXPECT_EQ(x["compression"], "gzip");
  EXPECT_EQ(x["level"], 4);
  EXPECT_EQ(x["shuffle"], false);
  const auto& y = report["y"];
  EXPECT_EQ(y["shape"], nlohmann::json({60000}));
  EXPECT_EQ(y["sha256"], sha256_of(labels));
  EXPECT_EQ(y["chunks"], nlohmann::json({60000}));
  EXPECT_EQ(y["compression"], "gzip");
  // Deflated: 47.1 MB of raw arrays take about 26.8 MB, like the .gz inputs.
  EXPECT_LT(fs::file_size(version.file), 30'000'000u);
}

}  // namespace
}  // namespace kiln::data
