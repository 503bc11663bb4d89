// Model files: safetensors with every parameter and buffer by name and the spec in
// the metadata; a round trip, numpy reading kiln's file, and malformed files.
#include <kiln/error.h>
#include <kiln/nn/model.h>
#include <kiln/safetensors.h>

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "formats/python_check.h"
#include "nn/gradient_checker.h"

namespace kiln::nn {
namespace {

using Json = nlohmann::json;
using kiln::test::TempDir;
using test::random_tensor;

const char* kSpec = R"({"input": [2, 4, 4], "layers": [
    {"conv2d": {"out": 3, "kernel": 3, "padding": 1}}, {"batchnorm2d": {}}, "relu",
    {"residual": [{"conv2d": {"out": 3, "kernel": 3, "padding": 1}}]}, "flatten",
    {"linear": {"out": 4}}]})";

std::vector<float> eval_output(Model& model, const Tensor& x) {
  ForwardContext context;
  return model.forward(x, {}, context).to_vector();
}

TEST(ModelFile, SaveLoadRoundTrip) {
  const TempDir dir;
  Model model = Model::build(Json::parse(kSpec), 99);
  ForwardContext context;  // a training pass moves the batch-norm running statistics
  model.forward(random_tensor({3, 2, 4, 4}, 1), {Mode::Train, 0, 0}, context);
  const auto path = dir / "model.safetensors";
  model.save(path, {{"run", "r-1"}, {"kiln.model", "the caller's value loses"}});

  const SafetensorsFile file = read_safetensors(path);
  EXPECT_EQ(file.metadata.at("run"), "r-1");
  EXPECT_EQ(Json::parse(file.metadata.at("kiln.model")), model.spec());
  std::set<std::string> names, expected;
  for (const StoredTensor& t : file.tensors) names.insert(t.name);
  for (const Parameter* p : model.parameters()) expected.insert(p->name);
  for (const auto& [name, tensor] : model.buffers()) expected.insert(name);
  EXPECT_EQ(names, expected);
  EXPECT_EQ(names.count("layers.1.running_var"), 1u);
  EXPECT_EQ(names.count("layers.3.body.0.weight"), 1u);

  Model loaded = Model::load(path);
  EXPECT_EQ(loaded.spec(), model.spec());
  ASSERT_EQ(loaded.parameters().size(), model.parameters().size());
  for (std::size_t i = 0; i < model.parameters().size(); ++i)
    EXPECT_EQ(loaded.parameters()[i]->value.to_vector(), model.parameters()[i]->value.to_vector());
  ASSERT_EQ(loaded.buffers().size(), model.buffers().size());
  for (std::size_t i = 0; i < model.buffers().size(); ++i)
    EXPECT_EQ(loaded.buffers()[i].second->to_vector(), model.buffers()[i].second->to_vector());
  const Tensor x = random_tensor({2, 2, 4, 4}, 2);
  EXPECT_EQ(eval_output(loaded, x), eval_output(model, x));
}

// A named block is saved inline (the file has no blocks table) and loads back with
// the same parameter names and outputs.
TEST(ModelFile, NamedBlocksRoundTrip) {
  const TempDir dir;
  Model model = Model::build(Json::parse(R"({"input": [2, 4, 4], "layers": [
      {"block": "conv_relu"}, {"residual": {"block": "conv_relu"}}, "flatten",
      {"linear": {"out": 3}}],
      "blocks": {"conv_relu": [{"conv2d": {"out": 2, "kernel": 3, "padding": 1}}, "relu"]}})"),
                             7);
  model.save(dir / "model.safetensors");
  Model loaded = Model::load(dir / "model.safetensors");
  EXPECT_EQ(loaded.spec(), model.spec());
  ASSERT_EQ(loaded.parameters().size(), model.parameters().size());
  for (std::size_t i = 0; i < model.parameters().size(); ++i)
    EXPECT_EQ(loaded.parameters()[i]->name, model.parameters()[i]->name);
  EXPECT_EQ(loaded.parameters().at(0)->name, "layers.0.0.weight");
  const Tensor x = random_tensor({2, 2, 4, 4}, 3);
  EXPECT_EQ(eval_output(loaded, x), eval_output(model, x));
}

using Edit = std::function<void(std::vector<TensorView>&, std::map<std::string, std::string>&)>;

// Writes a model file by hand, with `edit` applied to the tensor list and metadata.
void write_edited(const std::filesystem::path& path, const Edit& edit) {
  static Model model =
      Model::build(Json::parse(R"({"input": [3], "layers": [{"linear": {"out": 2}}]})"), 5);
  static const std::vector<std::vector<float>> values = {model.parameters()[0]->value.to_vector(),
                                                         model.parameters()[1]->value.to_vector()};
  std::vector<TensorView> views{{"layers.0.weight", DType::F32, {2, 3}, values[0].data()},
                                {"layers.0.bias", DType::F32, {2}, values[1].data()}};
  std::map<std::string, std::string> metadata{{"kiln.model", model.spec().dump()}};
  edit(views, metadata);
  write_safetensors(path, views, metadata);
}

struct BadModelCase {
  const char* name;
  Edit edit;
  const char* message;
};

TEST(ModelFile, MalformedModelFilesAreDataErrorsNamingTheFile) {
  static const std::vector<double> doubles(2, 1.0);
  const std::vector<BadModelCase> cases{
      {"no_spec", [](auto&, auto& m) { m.clear(); }, "not a kiln model"},
      {"spec_not_json", [](auto&, auto& m) { m["kiln.model"] = "{input"; }, "not valid JSON"},
      {"spec_invalid",
       [](auto&, auto& m) { m["kiln.model"] = R"({"input": [3], "layers": [{"linear": {}}]})"; },
       "does not describe a model"},
      // 100,000 nested lists: the parse stops at the depth limit (it overflowed
      // the stack in the layer builder before).
      {"spec_too_deep",
       [](auto&, auto& m) {
         m["kiln.model"] = R"({"input": [3], "layers": )" + std::string(100000, '[') +
                           R"({"linear": {"out": 2}})" + std::string(100000, ']') + "}";
       },
       "kiln.model: nests deeper than 128 levels"},
      {"layers_too_deep",
       [](auto&, auto& m) {
         m["kiln.model"] = R"({"input": [3], "layers": )" + std::string(40, '[') +
                           R"({"linear": {"out": 2}})" + std::string(40, ']') + "}";
       },
       "layers nest more than 32 levels deep"},
      {"missing_tensor", [](auto& v, auto&) { v.pop_back(); }, "tensor 'layers.0.bias' is missing"},
      {"wrong_shape",
       [](auto& v, auto&) {
         v[0].shape = {3, 2};
       },
       "tensor 'layers.0.weight' is f32 [3, 2]"},
      {"wrong_dtype",
       [](auto& v, auto&) {
         v[1] = {"layers.0.bias", DType::F64, {2}, doubles.data()};
       },
       "'layers.0.bias' is f64 [2]"},
  };
  const TempDir dir;
  for (const BadModelCase& bad : cases) {
    const auto path = dir / (std::string(bad.name) + ".safetensors");
    write_edited(path, bad.edit);
    try {
      Model::load(path);
      ADD_FAILURE() << bad.name << ": loaded";
    } catch (const DataError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(path.string() + ": ", 0), 0u) << bad.name << ": " << message;
      EXPECT_NE(message.find(bad.message), std::string::npos) << bad.name << ": " << message;
    }
  }
  EXPECT_THROW(Model::load(dir / "absent.safetensors"), DataError);
  write_edited(dir / "good.safetensors", [](auto&, auto&) {});
  EXPECT_NO_THROW(Model::load(dir / "good.safetensors"));
}

// numpy, reading kiln's file with the safetensors package, computes the same outputs.
TEST(ModelFile, NumpyForwardOfTheSavedModelMatches) {
  const TempDir dir;
  Model model = Model::build(Json::parse(R"({"input": [7], "layers": [
      {"linear": {"out": 6}}, "relu", {"linear": {"out": 5}}, "relu", {"linear": {"out": 4}}]})"),
                             17);
  model.save(dir / "model.safetensors", {{"note", "numpy check"}});
  const Tensor x = random_tensor({3, 7}, 3);
  const std::vector<float> xs = x.to_vector();
  write_safetensors(dir / "x.safetensors", {{"x", DType::F32, {3, 7}, xs.data()}});
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
for i, layer in enumerate(spec["layers"]):
    if layer == "relu":
        a = np.maximum(a, 0)
    else:
        a = a @ w[f"layers.{i}.weight"].astype(np.float64).T + w[f"layers.{i}.bias"]
save_file({"out": a.astype(np.float32)}, out_path)
)";
  KILN_RUN_PYTHON_CHECK(dir.path(), script,
                        {(dir / "model.safetensors").string(), (dir / "x.safetensors").string(),
                         (dir / "out.safetensors").string()});
  const auto out = read_safetensors(dir / "out.safetensors");
  const StoredTensor* numpy_out = out.find("out");
  ASSERT_NE(numpy_out, nullptr);
  ASSERT_EQ(numpy_out->shape, (std::vector<std::int64_t>{3, 4}));
  std::vector<float> expected(12);
  std::memcpy(expected.data(), numpy_out->bytes.data(), numpy_out->bytes.size());
  const std::vector<float> y = eval_output(model, x);
  for (std::size_t k = 0; k < 12; ++k)
    EXPECT_NEAR(y[k], expected[k], 1e-5 * (1 + std::abs(expected[k]))) << k;
}

}  // namespace
}  // namespace kiln::nn
