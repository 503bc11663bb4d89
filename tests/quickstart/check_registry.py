"""Reads the quickstart's registry with the real clients and checks what the
README promises. Prints one line per check; exit 0 when all hold, 1 when one
fails, 3 when mlflow or safetensors cannot be imported (the test skips then).

Usage: check_registry.py <registry root>
"""
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
check(run.data.params.get("train.with.hidden") == "[256,128]", "param train.with.hidden")
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
check(shapes == {"layers.0.weight": (256, 784), "layers.0.bias": (256,),
                 "layers.1.weight": (128, 256), "layers.1.bias": (128,),
                 "layers.2.weight": (10, 128), "layers.2.bias": (10,)},
      f"safetensors shapes {shapes}")
sys.exit(1 if failures else 0)
