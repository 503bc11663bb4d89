"""Reads a kiln registry with the real MLflow client and prints what it sees as JSON.

Used by the registry and CLI tests:
  read_with_mlflow.py summary <mlruns> <experiment> <model>   what MLflow sees of one run set
  read_with_mlflow.py scan <mlruns>                           read everything, print counts
  read_with_mlflow.py dump <mlruns> <experiment> [<model>]    every run (full metric histories
                                                              with timestamps) and every version
Exit status 3 means `import mlflow` failed (the tests skip then).
"""
import json
import math
import sys

try:
    from mlflow.tracking import MlflowClient
except Exception as error:  # noqa: BLE001 - any import failure means "cannot check"
    print(f"cannot import mlflow: {error}", file=sys.stderr)
    sys.exit(3)


def number(value):
    # JSON has no NaN or infinities; keep them as the strings kiln writes.
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def run_summary(client, run):
    artifacts = []
    pending = [None]
    while pending:
        for info in client.list_artifacts(run.info.run_id, pending.pop()):
            (pending.append(info.path) if info.is_dir else artifacts.append(info.path))
    history = {
        key: [[m.step, number(m.value), m.timestamp] for m in client.get_metric_history(run.info.run_id, key)]
        for key in run.data.metrics
    }
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "user_id": run.info.user_id,
        "params": run.data.params,
        "tags": run.data.tags,
        "latest_metrics": {k: number(v) for k, v in run.data.metrics.items()},
        "history": history,
        "artifacts": sorted(artifacts),
    }


def version_summary(version):
    return {
        "version": int(version.version),
        "run_id": version.run_id,
        "source": version.source,
        "status": version.status,
        "description": version.description,
        "tags": version.tags,
        "aliases": sorted(version.aliases),
    }


def client_for(mlruns):
    uri = "file://" + mlruns
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def summary(mlruns, experiment_name, model_name):
    client = client_for(mlruns)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    model = client.get_registered_model(model_name)
    summary = {
        "experiments": sorted(e.name for e in client.search_experiments()),
        "experiment": {
            "id": experiment.experiment_id,
            "name": experiment.name,
            "lifecycle_stage": experiment.lifecycle_stage,
        },
        "runs": [run_summary(client, client.get_run(r.info.run_id)) for r in runs],
        "models": sorted(m.name for m in client.search_registered_models()),
        "model": {"name": model.name, "aliases": model.aliases},
        "version_2": version_summary(client.get_model_version(model_name, "2")),
        "champion": version_summary(client.get_model_version_by_alias(model_name, "champion")),
        "all_versions": sorted(
            int(v.version) for v in client.search_model_versions(f"name = '{model_name}'")
        ),
    }
    print(json.dumps(summary))


def scan(mlruns):
    """Every experiment, run, metric history, model, version and alias, read in full."""
    client = client_for(mlruns)
    counts = {"experiments": 0, "runs": 0, "metric_points": 0, "models": 0, "versions": 0,
              "aliases": 0}
    experiments = client.search_experiments()
    counts["experiments"] = len(experiments)
    for experiment in experiments:
        for run in client.search_runs([experiment.experiment_id], max_results=50000):
            counts["runs"] += 1
            for key in client.get_run(run.info.run_id).data.metrics:
                counts["metric_points"] += len(client.get_metric_history(run.info.run_id, key))
    for model in client.search_registered_models():
        counts["models"] += 1
        for version in client.search_model_versions(f"name = '{model.name}'"):
            client.get_model_version(model.name, version.version)
            counts["versions"] += 1
        for alias in model.aliases:
            client.get_model_version_by_alias(model.name, alias)
            counts["aliases"] += 1
    print(json.dumps(counts))


def dump(mlruns, experiment_name, model_name=None):
    """Everything MLflow reports about an experiment's runs and a model, for comparing
    with kiln's own files line by line."""
    client = client_for(mlruns)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = []
    if experiment is not None:
        found = client.search_runs([experiment.experiment_id], run_view_type=3,
                                   order_by=["attributes.start_time ASC"])
        for run in found:
            runs.append(run_summary(client, client.get_run(run.info.run_id)))
    result = {"runs": runs}
    if model_name:
        model = client.get_registered_model(model_name)
        result["aliases"] = model.aliases
        result["versions"] = sorted(
            (version_summary(v) for v in client.search_model_versions(f"name = '{model_name}'")),
            key=lambda v: v["version"])
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "summary":
        summary(*sys.argv[2:5])
    elif sys.argv[1] == "dump":
        dump(*sys.argv[2:5])
    else:
        scan(sys.argv[2])
