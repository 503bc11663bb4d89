// Issue 6, "the safetensors weights load in the `safetensors` Python package with
// the same names, shapes and values": the weights of a model trained and registered
// by the kiln CLI, read by kiln and by safetensors.numpy, tensor by tensor and bit
// for bit. (tests/formats checks hand-made files of every dtype; this checks what
// the train and register stages really write.)
#include <kiln/dtype.h>
#include <kiln/safetensors.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "formats/python_check.h"
#include "report/report_cli_fixture.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

// kiln's view of the file: {name: {dtype, shape, raw}}, raw naming a file of the
// tensor's bytes as kiln read them.
void write_kiln_view(const SafetensorsFile& weights, const fs::path& dir) {
  nlohmann::json view = nlohmann::json::object();
  for (const StoredTensor& tensor : weights.tensors) {
    const fs::path raw = dir / (tensor.name + ".bin");
    write_text(raw, std::string(tensor.bytes.begin(), tensor.bytes.end()));
    view[tensor.name] = {{"dtype", std::string(safetensors_name(tensor.dtype))},
                         {"shape", tensor.shape},
                         {"raw", raw.string()}};
  }
  write_text(dir / "kiln.json", view.dump());
}

constexpr const char* kCompareScript = R"(
import json, sys
try:
    import numpy as np
    from safetensors.numpy import load_file
except Exception as e:
    print("skipped: cannot import safetensors/numpy:", e); sys.exit(77)
weights_file, view_file = sys.argv[1:]
loaded = load_file(weights_file)
view = json.load(open(view_file))
assert sorted(loaded) == sorted(view), (sorted(loaded), sorted(view))
dtypes = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64}
for name, want in view.items():
    got = loaded[name]
    assert got.dtype == dtypes[want["dtype"]], (name, got.dtype, want["dtype"])
    assert list(got.shape) == want["shape"], (name, got.shape, want["shape"])
    raw = np.fromfile(want["raw"], dtype=np.dtype(got.dtype).newbyteorder("<"))
    assert np.array_equal(got.reshape(-1).view(got.dtype), raw, equal_nan=True), name
    assert np.isfinite(got).all() and np.abs(got).max() > 0, name
print("ok", {name: list(t.shape) for name, t in loaded.items()})
)";

TEST_F(ReportCliTest, RegisteredWeightsLoadInPythonSafetensorsUnchanged) {
  ASSERT_FALSE(run_pipeline().empty());
  const auto versions = store().list_versions(kModel);
  ASSERT_EQ(versions.size(), 1u);
  const std::string prefix = "file://";
  ASSERT_EQ(versions[0].source.rfind(prefix, 0), 0u) << versions[0].source;
  const fs::path weights_file =
      fs::path(versions[0].source.substr(prefix.size())) / "model.safetensors";
  const SafetensorsFile weights = read_safetensors(weights_file);
  ASSERT_GE(weights.tensors.size(), 2u);
  write_kiln_view(weights, dir_.path());
  KILN_RUN_PYTHON_CHECK(dir_.path(), kCompareScript,
                        {weights_file.string(), (dir_ / "kiln.json").string()});
}

}  // namespace
}  // namespace kiln::test
