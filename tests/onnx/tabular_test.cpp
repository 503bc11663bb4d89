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

constexpr const char* kPipeline = R"(name: tabular
stages:
  train_data:
    uses: import
    with: {source: train.csv, name: tabular-train}
  test_data:
    uses: import
    with: {source: test.csv, name: tabular-test}
  train:
    uses: train
    needs: [train_data]
    with:
      model: {layers: [{linear: {out: 32}}, relu, {linear: {out: 2}}]}
      preprocess: {impute: mean, scale: standard}
      epochs: 60
      batch_size: 32
      optimizer: adamw
      lr: 3.0e-3
      seed: 0
  evaluate:
    uses: evaluate
    needs: [train, test_data]
    with: {gate: {accuracy: 0.95}}
  register:
    uses: register
    needs: [train, evaluate]
    with: {model_name: tabular-mlp}
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
logits = session.run(None, {session.get_inputs()[0].name: x})[0]
ours = logits.argmax(axis=1)
kiln = np.loadtxt(expected, dtype=np.int64)
assert ours.shape == kiln.shape, (ours.shape, kiln.shape)
different = np.flatnonzero(ours != kiln)
assert different.size == 0, f"rows {different[:10]} differ: onnxruntime {ours[different[:10]]}, kiln {kiln[different[:10]]}"
print(f"onnxruntime agrees with kiln on all {kiln.size} rows")
)";

TEST(Tabular, FittedScalingReachesTheGateAndTravelsIntoOnnx) {
  TempDir dir;
  KILN_RUN_PYTHON_CHECK(dir.path(), kMakeTables, {dir.path().string()});
  write_text(dir / "tabular.yaml", kPipeline);
  const std::string kiln = std::string(KILN_BINARY_DIR) + "/bin/kiln";
  const CommandResult run = run_command({kiln, "--registry", "registry", "run", "tabular.yaml"},
                                        {{"KILN_PLAIN_PROGRESS", "1"}}, dir.path());
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.err,
              HasSubstr("train: preprocess fitted on 450 rows: impute mean, scale standard"));
  EXPECT_THAT(run.out, HasSubstr("gate passed"));
  std::cout << run.out;

  const CommandResult exported =
      run_command({kiln, "--registry", "registry", "registry", "export-onnx", "tabular-mlp",
                   "--output", "tabular.onnx"},
                  {}, dir.path());
  ASSERT_EQ(exported.exit_code, 0) << exported.err;

  // kiln's own predictions on the test version, with the model's stored preprocessing.
  const registry::MlflowStore store(dir / "registry");
  const auto version = registry::resolve_model_ref(store, registry::parse_model_ref("tabular-mlp"));
  const auto weights = registry::model_weights_file(version);
  ASSERT_TRUE(weights.has_value());
  const auto test_version = data::DatasetStore(dir / "registry").find("tabular-test");
  ASSERT_TRUE(test_version.has_value());
  const train::Predictions predictions = train::predict_classes(*weights, test_version->file, 64);
  std::int64_t right = 0;
  {
    std::ofstream out(dir / "kiln-predictions.txt");
    for (std::size_t i = 0; i < predictions.predicted.size(); ++i) {
      out << predictions.predicted[i] << "\n";
      right += predictions.predicted[i] == predictions.labels[i];
    }
  }
  const double accuracy =
      static_cast<double>(right) / static_cast<double>(predictions.labels.size());
  std::cout << "test accuracy " << accuracy << " on " << predictions.labels.size() << " rows\n";
  EXPECT_GE(accuracy, 0.95);
  KILN_RUN_PYTHON_CHECK(dir.path(), kCompare,
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

constexpr const char* kCityPipeline = R"(name: cities
stages:
  train_data:
    uses: import
    with: {source: train.csv, name: cities-train, categorical_columns: [city]}
  test_data:
    uses: import
    with: {source: test.csv, name: cities-test, categorical_columns: [city]}
  train:
    uses: train
    needs: [train_data]
    with:
      model: {layers: [{linear: {out: 16}}, relu, {linear: {out: 2}}]}
      preprocess: {impute: median, scale: standard}
      epochs: 40
      batch_size: 32
      optimizer: adamw
      lr: 3.0e-3
      seed: 0
  evaluate:
    uses: evaluate
    needs: [train, test_data]
    with: {gate: {accuracy: 0.8}}
  register:
    uses: register
    needs: [train, evaluate]
    with: {model_name: cities-mlp}
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
logits = session.run(None, {session.get_inputs()[0].name: x})[0]
ours = logits.argmax(axis=1)
kiln = np.loadtxt(expected, dtype=np.int64)
assert ours.shape == kiln.shape, (ours.shape, kiln.shape)
different = np.flatnonzero(ours != kiln)
assert different.size == 0, f"rows {different[:10]} differ: onnxruntime {ours[different[:10]]}, kiln {kiln[different[:10]]}"
print(f"onnxruntime agrees with kiln on all {kiln.size} rows")
)";

TEST(Tabular, CategoricalColumnsAreOneHotEncodedByNameAndInOnnx) {
  TempDir dir;
  KILN_RUN_PYTHON_CHECK(dir.path(), kMakeCityTables, {dir.path().string()});
  write_text(dir / "cities.yaml", kCityPipeline);
  const std::string kiln = std::string(KILN_BINARY_DIR) + "/bin/kiln";
  const CommandResult run = run_command({kiln, "--registry", "registry", "run", "cities.yaml"},
                                        {{"KILN_PLAIN_PROGRESS", "1"}}, dir.path());
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.err, HasSubstr("train: preprocess fitted on 480 rows: impute median, scale "
                                 "standard, 1 one-hot columns"));
  EXPECT_THAT(run.out, HasSubstr("gate passed"));
  const fs::path artifact_json = [&] {
    for (const auto& entry : fs::recursive_directory_iterator(dir / "registry"))
      if (entry.path().filename() == "preprocess.json") return entry.path();
    return fs::path();
  }();
  ASSERT_FALSE(artifact_json.empty()) << "no preprocess.json artifact";
  EXPECT_THAT(read_text(artifact_json), HasSubstr("\"Paris, TX\""));

  const CommandResult exported =
      run_command({kiln, "--registry", "registry", "registry", "export-onnx", "cities-mlp",
                   "--output", "cities.onnx"},
                  {}, dir.path());
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const registry::MlflowStore store(dir / "registry");
  const auto version = registry::resolve_model_ref(store, registry::parse_model_ref("cities-mlp"));
  const auto weights = registry::model_weights_file(version);
  ASSERT_TRUE(weights.has_value());
  const auto test_version = data::DatasetStore(dir / "registry").find("cities-test");
  ASSERT_TRUE(test_version.has_value());
  EXPECT_EQ(test_version->source["categories"]["city"],
            nlohmann::json({"Lima", "Oslo", "Paris, TX", "Quito"}));
  const train::Predictions predictions = train::predict_classes(*weights, test_version->file, 64);
  std::int64_t right = 0;
  {
    std::ofstream out(dir / "kiln-predictions.txt");
    for (std::size_t i = 0; i < predictions.predicted.size(); ++i) {
      out << predictions.predicted[i] << "\n";
      right += predictions.predicted[i] == predictions.labels[i];
    }
  }
  std::cout << "test accuracy " << static_cast<double>(right) / 160.0 << " on 160 rows\n";
  KILN_RUN_PYTHON_CHECK(dir.path(), kCompareCities,
                        {(dir / "cities.onnx").string(), (dir / "test.csv").string(),
                         (dir / "kiln-predictions.txt").string()});
}

}  // namespace
}  // namespace kiln::test
