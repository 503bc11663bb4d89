// Tabular features with raw scales from 1e-3 to 1e3 and some missing cells (a
// stand-in for scikit-learn's breast-cancer table, built here with the same kind of
// scales: 569 rows, 30 features, 450 to train and 119 to test), through the real
// pipeline: CSV import, train with `preprocess: {impute: mean, scale: standard}`
// fitted on the training rows, evaluate with a 0.95 gate, register. Then the model
// exported to ONNX and run in onnxruntime on the raw test features gives kiln's own
// predictions, row by row.
#include <kiln/data/dataset.h>
#include <kiln/nn/model.h>
#include <kiln/registry/browse.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/train/predict.h>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "formats/python_check.h"
#include "support/support.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr const char* kMakeTables = R"(
import sys
import numpy as np
rng = np.random.default_rng(3)
rows, columns = 569, 30
scales = 10.0 ** rng.uniform(-3, 3, columns)
offsets = scales * rng.uniform(1, 5, columns)
z = rng.standard_normal((rows, columns))
weights = rng.standard_normal(columns)
label = (z @ weights + 0.1 * rng.standard_normal(rows) > 0).astype(int)
x = offsets + scales * z
x[rng.random((rows, columns)) < 0.01] = np.nan        # missing cells
names = ",".join(f"f{i}" for i in range(columns)) + ",label"
for name, part in (("train", slice(0, 450)), ("test", slice(450, rows))):
    with open(f"{sys.argv[1]}/{name}.csv", "w") as f:
        f.write(names + "\n")
        for features, y in zip(x[part], label[part]):
            cells = ["" if np.isnan(v) else repr(float(v)) for v in features]
            f.write(",".join(cells) + f",{y}\n")
)";

// The pipeline of both tests: two CSV imports, train with fitted preprocessing,
// evaluate with a gate, register NAME-mlp.
constexpr const char* kPipelineTemplate = R"(name: {name}
stages:
  train_data:
    uses: import
    with: {{source: train.csv, name: {name}-train{import}}}
  test_data:
    uses: import
    with: {{source: test.csv, name: {name}-test{import}}}
  train:
    uses: train
    needs: [train_data]
    with:
      model: {{layers: [{{linear: {{out: {width}}}}}, relu, {{linear: {{out: 2}}}}]}}
      preprocess: {{impute: {impute}, scale: standard}}
      epochs: {epochs}
      batch_size: 32
      optimizer: adamw
      lr: 3.0e-3
      seed: 0
  evaluate:
    uses: evaluate
    needs: [train, test_data]
    with: {{gate: {{accuracy: {gate}}}}}
  register:
    uses: register
    needs: [train, evaluate]
    with: {{model_name: {name}-mlp}}
)";

// The end of both comparisons: onnxruntime's predictions for `x` must equal kiln's,
// read one per line from `expected`.
constexpr const char* kAgree = R"(
logits = session.run(None, {session.get_inputs()[0].name: x})[0]
ours = logits.argmax(axis=1)
kiln = np.loadtxt(expected, dtype=np.int64)
assert ours.shape == kiln.shape, (ours.shape, kiln.shape)
different = np.flatnonzero(ours != kiln)
assert different.size == 0, f"rows {different[:10]} differ: onnxruntime {ours[different[:10]]}, kiln {kiln[different[:10]]}"
print(f"onnxruntime agrees with kiln on all {kiln.size} rows")
)";

// onnxruntime's predictions on the raw test CSV (empty cells as NaN) must equal
// kiln's, one per line in argv[3].
constexpr const char* kCompare = R"(
import sys
import numpy as np
import onnxruntime as ort
model, table, expected = sys.argv[1:4]
x = np.genfromtxt(table, delimiter=",", skip_header=1, dtype=np.float32)[:, :-1]
assert np.isnan(x).any(), "the test table has no missing cell"
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
)";

// Runs `pipeline` (written to NAME.yaml) in `dir` and checks that it passed its
// gate; returns the run's stderr.
std::string run_pipeline(const TempDir& dir, const std::string& name, const std::string& pipeline) {
  write_text(dir / (name + ".yaml"), pipeline);
  const CommandResult run = run_command(
      {std::string(KILN_BINARY_DIR) + "/bin/kiln", "--registry", "registry", "run", name + ".yaml"},
      {{"KILN_PLAIN_PROGRESS", "1"}}, dir.path());
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("gate passed"));
  return run.err;
}

// Exports registered `model` to ONNX (`onnx_file` in `dir`), predicts with kiln on
// dataset version `dataset` with the model's stored preprocessing, writes those
// predictions one per line to kiln-predictions.txt and returns kiln's accuracy.
double export_and_predict(const TempDir& dir, const std::string& model,
                          const std::string& onnx_file, const std::string& dataset) {
  const CommandResult exported =
      run_command({std::string(KILN_BINARY_DIR) + "/bin/kiln", "--registry", "registry", "registry",
                   "export-onnx", model, "--output", onnx_file},
                  {}, dir.path());
  EXPECT_EQ(exported.exit_code, 0) << exported.err;
  const registry::MlflowStore store(dir / "registry");
  const auto version = registry::resolve_model_ref(store, registry::parse_model_ref(model));
  const auto weights = registry::model_weights_file(version);
  const auto test_version = data::DatasetStore(dir / "registry").find(dataset);
  if (!weights || !test_version) {
    ADD_FAILURE() << "no weights for " << model << " or no dataset " << dataset;
    return 0;
  }
  const train::Predictions predictions = train::predict_classes(*weights, test_version->file, 64);
  std::int64_t right = 0;
  std::ofstream out(dir / "kiln-predictions.txt");
  for (std::size_t i = 0; i < predictions.predicted.size(); ++i) {
    out << predictions.predicted[i] << "\n";
    right += predictions.predicted[i] == predictions.labels[i];
  }
  const double accuracy =
      static_cast<double>(right) / static_cast<double>(predictions.labels.size());
  std::cout << "test accuracy " << accuracy << " on " << predictions.labels.size() << " rows\n";
  return accuracy;
}

TEST(Tabular, FittedScalingReachesTheGateAndTravelsIntoOnnx) {
  TempDir dir;
  KILN_RUN_PYTHON_CHECK(dir.path(), kMakeTables, {dir.path().string()});
  EXPECT_THAT(run_pipeline(dir, "tabular",
                           fmt::format(kPipelineTemplate, fmt::arg("name", "tabular"),
                                       fmt::arg("import", ""), fmt::arg("width", 32),
                                       fmt::arg("impute", "mean"), fmt::arg("epochs", 60),
                                       fmt::arg("gate", 0.95))),
              HasSubstr("train: preprocess fitted on 450 rows: impute mean, scale standard"));
  EXPECT_GE(export_and_predict(dir, "tabular-mlp", "tabular.onnx", "tabular-test"), 0.95);
  KILN_RUN_PYTHON_CHECK(dir.path(), std::string(kCompare) + kAgree,
                        {(dir / "tabular.onnx").string(), (dir / "test.csv").string(),
                         (dir / "kiln-predictions.txt").string()});
}

// One-hot encoding end to end: the label is decided by a text column, city. The
// test file lacks one training city and has one the training file never saw, so its
// codes differ from the training version's and kiln must match categories by name.
constexpr const char* kMakeCityTables = R"(
import csv, sys
import numpy as np
rng = np.random.default_rng(5)
def write(name, rows, cities):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["a", "city", "b", "label"])
        for _ in range(rows):
            city = cities[rng.integers(len(cities))]
            label = int(city in ("Lima", "Oslo"))
            if city == "Quito" or rng.random() < 0.03:
                label = int(rng.integers(2))
            a, b = rng.normal(100, 30), rng.normal(0, 0.01)
            cell = "" if rng.random() < 0.05 else city
            if cell == "":
                label = int(rng.integers(2))
            out.writerow([a, cell, "" if rng.random() < 0.05 else b, label])
write("train", 480, ["Athens", "Lima", "Oslo", "Paris, TX"])
write("test", 160, ["Lima", "Oslo", "Paris, TX"] * 2 + ["Quito"])
)";

// The exported model takes the raw columns with each city as the index of its name
// among the fitted categories in the model's kiln.preprocess (NaN when missing or
// unseen); onnxruntime's predictions must equal kiln's.
constexpr const char* kCompareCities = R"(
import csv, json, sys
import numpy as np
import onnxruntime as ort
model, table, expected = sys.argv[1:4]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
preprocess = json.loads(session.get_modelmeta().custom_metadata_map["kiln.preprocess"])
[city] = preprocess["fitted"]["categorical"]
assert city["name"] == "city" and city["column"] == 1, city
assert city["categories"] == ["Athens", "Lima", "Oslo", "Paris, TX"], city
assert session.get_inputs()[0].shape[1] == 3, session.get_inputs()[0].shape
def number(text):
    return float(text) if text else np.nan
def code(text):
    return float(city["categories"].index(text)) if text in city["categories"] else np.nan
with open(table, newline="") as f:
    rows = list(csv.DictReader(f))
x = np.array([[number(r["a"]), code(r["city"]), number(r["b"])] for r in rows], dtype=np.float32)
)";

TEST(Tabular, CategoricalColumnsAreOneHotEncodedByNameAndInOnnx) {
  TempDir dir;
  KILN_RUN_PYTHON_CHECK(dir.path(), kMakeCityTables, {dir.path().string()});
  EXPECT_THAT(run_pipeline(dir, "cities",
                           fmt::format(kPipelineTemplate, fmt::arg("name", "cities"),
                                       fmt::arg("import", ", categorical_columns: [city]"),
                                       fmt::arg("width", 16), fmt::arg("impute", "median"),
                                       fmt::arg("epochs", 40), fmt::arg("gate", 0.8))),
              HasSubstr("train: preprocess fitted on 480 rows: impute median, scale "
                        "standard, 1 one-hot columns"));
  const fs::path artifact_json = [&] {
    for (const auto& entry : fs::recursive_directory_iterator(dir / "registry"))
      if (entry.path().filename() == "preprocess.json") return entry.path();
    return fs::path();
  }();
  ASSERT_FALSE(artifact_json.empty()) << "no preprocess.json artifact";
  EXPECT_THAT(read_text(artifact_json), HasSubstr("\"Paris, TX\""));
  const auto test_version = data::DatasetStore(dir / "registry").find("cities-test");
  ASSERT_TRUE(test_version.has_value());
  EXPECT_EQ(test_version->source["categories"]["city"],
            nlohmann::json({"Lima", "Oslo", "Paris, TX", "Quito"}));
  EXPECT_GE(export_and_predict(dir, "cities-mlp", "cities.onnx", "cities-test"), 0.8);
  KILN_RUN_PYTHON_CHECK(dir.path(), std::string(kCompareCities) + kAgree,
                        {(dir / "cities.onnx").string(), (dir / "test.csv").string(),
                         (dir / "kiln-predictions.txt").string()});
}

}  // namespace
}  // namespace kiln::test
