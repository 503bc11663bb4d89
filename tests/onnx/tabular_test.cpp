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

}  // namespace
}  // namespace kiln::test
