#include <kiln/error.h>
#include <kiln/nn/mlp.h>
#include <kiln/nn/rng.h>
#include <kiln/safetensors.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "formats/python_check.h"

namespace kiln::nn {
namespace {

using test::TempDir;

TEST(MlpFile, SaveLoadRoundTrip) {
  const TempDir dir;
  const Mlp model(MlpSpec{6, {5, 4}, 3}, 99);
  const auto path = dir / "model.safetensors";
  model.save(path, {{"run", "r-1"}, {"kiln.model", "the caller's value loses"}});

  const SafetensorsFile file = read_safetensors(path);
  EXPECT_EQ(file.metadata.at("run"), "r-1");
  EXPECT_EQ(nlohmann::json::parse(file.metadata.at("kiln.model")), model.spec().to_json());
  ASSERT_EQ(file.tensors.size(), 6u);
  EXPECT_EQ(file.tensors[0].name, "layers.0.weight");
  EXPECT_EQ(file.tensors[5].name, "layers.2.bias");

  const Mlp loaded = Mlp::load(path);
  EXPECT_EQ(loaded.spec().to_json(), model.spec().to_json());
  ASSERT_EQ(loaded.parameters().size(), model.parameters().size());
  for (std::size_t i = 0; i < model.parameters().size(); ++i) {
    EXPECT_EQ(loaded.parameters()[i].value, model.parameters()[i].value);
    EXPECT_EQ(loaded.parameters()[i].shape, model.parameters()[i].shape);
  }
}

// Writes a model file by hand, with `edit` applied to the tensor list and metadata.
void write_edited(const std::filesystem::path& path,
                  const std::function<void(std::vector<TensorView>&,
                                           std::map<std::string, std::string>&)>& edit) {
  static const Mlp model(MlpSpec{3, {2}, 2}, 5);
  std::vector<TensorView> views;
  for (const Parameter& p : model.parameters())
    views.push_back({p.name, DType::F32, p.shape, p.value.data()});
  std::map<std::string, std::string> metadata{{"kiln.model", model.spec().to_json().dump()}};
  edit(views, metadata);
  write_safetensors(path, views, metadata);
}

struct BadModelCase {
  const char* name;
  std::function<void(std::vector<TensorView>&, std::map<std::string, std::string>&)> edit;
  const char* message;
};

TEST(MlpFile, MalformedModelFilesAreDataErrorsNamingTheFile) {
  static const std::vector<double> doubles(6, 1.0);
  static const std::vector<float> floats(10, 1.0f);
  const std::vector<BadModelCase> cases{
      {"no_spec", [](auto&, auto& m) { m.clear(); }, "no \"kiln.model\""},
      {"spec_not_json", [](auto&, auto& m) { m["kiln.model"] = "{inputs"; }, "not valid JSON"},
      {"spec_invalid", [](auto&, auto& m) { m["kiln.model"] = R"({"inputs":0,"outputs":2})"; },
       "\"inputs\" must lie in"},
      {"missing_tensor", [](auto& v, auto&) { v.pop_back(); }, "missing tensor \"layers.1.bias\""},
      {"wrong_shape",
       [](auto& v, auto&) {
         v[0].shape = {3, 2};
       },
       "\"layers.0.weight\" has shape [3, 2]"},
      {"wrong_dtype",
       [](auto& v, auto&) {
         v[1] = {"layers.0.bias", DType::F64, {2}, doubles.data()};
       },
       "dtype F64, expected F32"},
      {"extra_tensor",
       [](auto& v, auto&) {
         v.push_back({"layers.9.weight", DType::F32, {10}, floats.data()});
       },
       "unexpected tensor \"layers.9.weight\""},
  };
  const TempDir dir;
  for (const BadModelCase& bad : cases) {
    const auto path = dir / (std::string(bad.name) + ".safetensors");
    write_edited(path, bad.edit);
    try {
      Mlp::load(path);
      ADD_FAILURE() << bad.name << ": loaded";
    } catch (const DataError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(path.string() + ": ", 0), 0u) << bad.name << ": " << message;
      EXPECT_NE(message.find(bad.message), std::string::npos) << bad.name << ": " << message;
    }
  }
  EXPECT_THROW(Mlp::load(dir / "absent.safetensors"), DataError);
}

// numpy, reading kiln's file with the safetensors package, computes the same logits.
TEST(MlpFile, NumpyForwardOfTheSavedModelMatches) {
  const TempDir dir;
  const Mlp model(MlpSpec{7, {6, 5}, 4}, 17);
  model.save(dir / "model.safetensors", {{"note", "numpy check"}});
  std::vector<float> x;
  for (int i = 0; i < 3 * 7; ++i) x.push_back(uniform01(1, RngStream::Augment, i) * 2 - 1);
  write_safetensors(dir / "x.safetensors", {{"x", DType::F32, {3, 7}, x.data()}});

  const char* script = R"(
import sys, json
try:
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
except ImportError as e:
    print("skipped: python module missing:", e); sys.exit(77)
model_path, x_path, out_path = sys.argv[1:]
with safe_open(model_path, framework="np") as f:
    spec = json.loads(f.metadata()["kiln.model"])
    assert f.metadata()["note"] == "numpy check"
w = load_file(model_path)
a = load_file(x_path)["x"].astype(np.float64)
layers = 1 + len(spec["hidden"])
for l in range(layers):
    a = a @ w[f"layers.{l}.weight"].astype(np.float64).T + w[f"layers.{l}.bias"]
    if l + 1 < layers:
        a = np.maximum(a, 0)
save_file({"logits": a.astype(np.float32)}, out_path)
)";
  KILN_RUN_PYTHON_CHECK(dir.path(), script,
                        {(dir / "model.safetensors").string(), (dir / "x.safetensors").string(),
                         (dir / "logits.safetensors").string()});
  const auto logits = read_safetensors(dir / "logits.safetensors");
  const StoredTensor* numpy_logits = logits.find("logits");
  ASSERT_NE(numpy_logits, nullptr);
  ASSERT_EQ(numpy_logits->shape, (std::vector<std::int64_t>{3, 4}));
  std::vector<float> expected(12);
  std::memcpy(expected.data(), numpy_logits->bytes.data(), numpy_logits->bytes.size());
  const auto context = model.forward(x.data(), 3);
  for (std::size_t k = 0; k < 12; ++k)
    EXPECT_NEAR(context.logits()[k], expected[k], 1e-5 * (1 + std::abs(expected[k]))) << k;
}

}  // namespace
}  // namespace kiln::nn
