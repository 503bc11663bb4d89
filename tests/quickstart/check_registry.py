"""Reads the quickstart's registry with the real clients and checks what the
README promises. Prints one line per check; exit 0 when all hold, 1 when one
fails, 3 when mlflow or safetensors cannot be imported (the test skips then).

Usage: check_registry.py <registry root>
"""
import math
import os
import sys

try:
    from mlflow.tracking import MlflowClient
    from safetensors.numpy import load_file
except Exception as error:  # noqa: BLE001 - any import failure means "cannot check"
    print(f"cannot import mlflow/safetensors: {error}", file=sys.stderr)
    sys.exit(3)

root = os.path.abspath(sys.argv[1])
client = MlflowClient(tracking_uri=f"file://{root}/mlruns", registry_uri=f"file://{root}/mlruns")
failures = []


def check(condition, text):
    print(("ok   " if condition else "FAIL ") + text)
    if not condition:
        failures.append(text)


experiment = client.get_experiment_by_name("quickstart")
check(experiment is not None, "experiment 'quickstart' exists")
runs = client.search_runs([experiment.experiment_id])
check(len(runs) == 1, f"one run (found {len(runs)})")
run = runs[0]
check(run.info.status == "FINISHED", f"run status FINISHED ({run.info.status})")
check(run.data.params.get("train.with.lr") == "0.001", "param train.with.lr = 0.001")
check('{"linear":{"out":256}}' in run.data.params.get("train.with.model", ""), "param train.with.model")
loss = client.get_metric_history(run.info.run_id, "train/loss")
check(len(loss) >= 10 and loss[-1].value < loss[0].value,
      f"train/loss history falls ({len(loss)} points, {loss[0].value:.3f} -> {loss[-1].value:.3f})")
speed = client.get_metric_history(run.info.run_id, "train/samples_per_s")
check(len(speed) == len(loss) and min(m.value for m in speed) > 0, "train/samples_per_s logged")
accuracy = run.data.metrics.get("eval/accuracy", 0)
check(accuracy >= 0.88, f"eval/accuracy {accuracy:.4f} >= 0.88")
check(run.data.tags.get("kiln.dataset.train_data", "") != "", "dataset version tag")

version = client.get_model_version_by_alias("fashion-mnist-mlp", "champion")
check(version.version in (1, "1"), f"champion is version 1 ({version.version})")
check(version.run_id == run.info.run_id, "version 1 points at the run")
weights_path = os.path.join(version.source.removeprefix("file://"), "model.safetensors")
weights = load_file(weights_path)
shapes = {name: tuple(array.shape) for name, array in weights.items()}
check(shapes == {"layers.1.weight": (256, 784), "layers.1.bias": (256,),
                 "layers.3.weight": (128, 256), "layers.3.bias": (128,),
                 "layers.5.weight": (10, 128), "layers.5.bias": (10,)},
      f"safetensors shapes {shapes}")

# What MLflow reads is what kiln wrote (issue 5, acceptance 1): params and every
# metric history, line by line, against the run's own files.
run_dir = os.path.join(root, "mlruns", run.info.experiment_id, run.info.run_id)


def files_under(directory):
    for parent, _, names in os.walk(directory):
        for name in sorted(names):
            path = os.path.join(parent, name)
            yield os.path.relpath(path, directory), path


def same_number(a, b):
    return a == b or (math.isnan(a) and math.isnan(b))


kiln_params = {key: open(path, encoding="utf-8").read()
               for key, path in files_under(os.path.join(run_dir, "params"))}
check(run.data.params == kiln_params, f"params equal kiln's param files ({len(kiln_params)})")
keys, points, differing = 0, 0, []
for key, path in files_under(os.path.join(run_dir, "metrics")):
    with open(path, encoding="utf-8") as metric_file:
        lines = [line.split(" ") for line in metric_file.read().splitlines()]
    history = client.get_metric_history(run.info.run_id, key)
    keys, points = keys + 1, points + len(lines)
    if len(history) != len(lines) or not all(
            m.timestamp == int(t) and same_number(m.value, float(v)) and m.step == int(s)
            for m, (t, v, s) in zip(history, lines)):
        differing.append(key)
check(keys == len(run.data.metrics) and not differing,
      f"metric histories equal kiln's metric files line by line ({keys} keys, {points} points"
      f"{', differing: ' + ', '.join(differing) if differing else ''})")
model = client.get_registered_model("fashion-mnist-mlp")
check(model.aliases == {"champion": "1"}, f"aliases {model.aliases}")
artifacts = {info.path for info in client.list_artifacts(run.info.run_id)}
check({"kiln.log", "pipeline.yaml", "model"} <= artifacts, f"run artifacts {sorted(artifacts)}")
sys.exit(1 if failures else 0)
