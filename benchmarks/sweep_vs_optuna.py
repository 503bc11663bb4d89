#!/usr/bin/env python3
"""The sweep benchmark of issue #12: `kiln sweep configs/sweep_mlp.yaml` against
Optuna driving the same MLP in PyTorch, in one run, on the same machine.

  benchmarks/sweep_vs_optuna.py [--kiln build/bin/kiln] [--workers 2] [--trials 24]
                                [--epochs 6] [--data DIR] [--json FILE] [--only kiln|optuna]
                                [--repeat N]

Both sides search the same space (lr loguniform [1e-4, 3e-2], weight_decay
loguniform [1e-6, 1e-2], width choice {128, 256, 512} for an MLP 784-w-w/2-10 with
ReLU, batch size choice {64, 128, 256}; AdamW with a cosine schedule over the
trial's steps) with the same budget (24 trials of at most 6 epochs, TPE, successive
halving from 1 epoch with factor 3) on the same split (the first 50,000 training
rows train, the last 10,000 validate; the 10,000 test rows score the winner only).
Each side runs 2 worker processes of 1 thread each. Optuna's workers share a
journal file; each gets its own TPE seed (0 and 1), since two processes with one
seed would draw the same startup trials.

Reported per side: best validation accuracy, test accuracy of the winner, epochs
trained in all, pruned trials, wall time. kiln's figures are read from its journal
with Optuna itself (the journal is Optuna's format), and the winner's test accuracy
from the evaluate stage of the run that `kiln sweep` ends with.

With --repeat N both sides run N times, one after the other, each run in a fresh
registry, and the median of each figure is compared as well: kiln's sweep draws
the same trials every run (TPE seeded, one draw per claim), while Optuna's two
workers draw from a journal the other is writing, so its trials, epochs and time
differ from run to run (47-179 s over eight runs before 2026-12-06's last entry
in benchmarks/RESULTS.md).
Use the project's venv (.venv/bin/python: optuna, and Debian's python3-torch).
"""
import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time

# First: compare_torch (through torch_peer) gives the PyTorch side its best OpenBLAS
# settings before numpy or torch load OpenBLAS (see torch_peer's docstring); kiln
# runs with KILN_ENV, the environment as it was.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_torch import DATA, KILN_ENV  # noqa: E402
from torch_peer import read_idx  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VALIDATION_ROWS = 10_000


def load_split(data):
    x = read_idx(f"{data}/train-images-idx3-ubyte.gz").astype(np.float32).reshape(-1, 784) / 255.0
    y = read_idx(f"{data}/train-labels-idx1-ubyte.gz").astype(np.int64)
    tx = read_idx(f"{data}/t10k-images-idx3-ubyte.gz").astype(np.float32).reshape(-1, 784) / 255.0
    ty = read_idx(f"{data}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    cut = x.shape[0] - VALIDATION_ROWS
    return (x[:cut], y[:cut]), (x[cut:], y[cut:]), (tx, ty)


def mlp(width):
    import torch.nn as nn
    return nn.Sequential(nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width // 2), nn.ReLU(),
                         nn.Linear(width // 2, 10))


def accuracy(model, x, y):
    import torch
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def optuna_worker(worker, journal, trials, epochs, data, models_dir):
    import optuna
    import torch
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (x, y), (vx, vy), _ = load_split(data)
    x, y, vx, vy = map(torch.from_numpy, (x, y, vx, vy))

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 3e-2, log=True)
        weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
        width = trial.suggest_categorical("width", [128, 256, 512])
        batch = trial.suggest_categorical("batch_size", [64, 128, 256])
        torch.manual_seed(trial.number)
        model = mlp(width)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = (x.shape[0] + batch - 1) // batch
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps_per_epoch * epochs)
        loss_fn = torch.nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(trial.number)
        value = 0.0
        for epoch in range(1, epochs + 1):
            order = torch.randperm(x.shape[0], generator=generator)
            for first in range(0, x.shape[0], batch):
                index = order[first:first + batch]
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(x[index]), y[index]).backward()
                optimizer.step()
                schedule.step()
            value = accuracy(model, vx, vy)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        torch.save(model.state_dict(), os.path.join(models_dir, f"{trial.number}.pt"))
        return value

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.load_study(
        study_name="optuna-mlp", storage=storage,
        sampler=optuna.samplers.TPESampler(seed=worker),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3))
    study.optimize(objective, n_trials=trials)


def summarize(study):
    import optuna
    states = [t.state for t in study.trials]
    best = study.best_trial
    return {
        "trials": len(study.trials),
        "complete": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
        "failed": states.count(optuna.trial.TrialState.FAIL),
        "epochs": sum(len(t.intermediate_values) for t in study.trials),
        "best_trial": best.number,
        "best_validation_accuracy": best.value,
        "best_params": best.params,
    }


def run_optuna(args, work):
    import optuna
    import torch
    journal = os.path.join(work, "optuna-journal.log")
    models_dir = os.path.join(work, "optuna-models")
    os.makedirs(models_dir)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    optuna.create_study(study_name="optuna-mlp", storage=storage, direction="maximize")
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    # Each worker runs its share of the budget: 24 trials in all, as kiln's. (Optuna's
    # MaxTrialsCallback counts only COMPLETE trials by default, so with pruning it
    # would run far more.)
    shares = [args.trials // args.workers + (w < args.trials % args.workers)
              for w in range(args.workers)]
    workers = [context.Process(target=optuna_worker,
                               args=(w, journal, shares[w], args.epochs, args.data, models_dir))
               for w in range(args.workers)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise SystemExit(f"an Optuna worker exited with {w.exitcode}")
    wall = time.perf_counter() - start
    result = summarize(optuna.load_study(study_name="optuna-mlp", storage=storage))
    _, _, (tx, ty) = load_split(args.data)
    model = mlp(result["best_params"]["width"])
    model.load_state_dict(torch.load(os.path.join(models_dir, f"{result['best_trial']}.pt")))
    result["test_accuracy"] = accuracy(model, torch.from_numpy(tx), torch.from_numpy(ty))
    result["wall_s"] = wall
    result["version"] = f"optuna {optuna.__version__}, torch {torch.__version__}"
    return result


def run_kiln(args, work):
    import optuna
    registry = os.path.join(work, "kiln-registry")
    config = os.path.join(HERE, "..", "configs", "sweep_mlp.yaml")
    command = [args.kiln, "--registry", registry, "sweep", config,
               f"train.with.epochs={args.epochs}", "--workers", str(args.workers),
               "--trials", str(args.trials)]
    data_overrides = [f"train_data.with.images={args.data}/train-images-idx3-ubyte.gz",
                      f"train_data.with.labels={args.data}/train-labels-idx1-ubyte.gz",
                      f"test_data.with.images={args.data}/t10k-images-idx3-ubyte.gz",
                      f"test_data.with.labels={args.data}/t10k-labels-idx1-ubyte.gz"]
    command[5:5] = data_overrides
    # Timed end to end, the Fashion-MNIST import and the split included, as each
    # Optuna worker's reading of the IDX files is inside its side's time.
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=KILN_ENV)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-2000:])
        raise SystemExit(f"kiln sweep exited with {done.returncode}")
    summary_file = os.path.join(registry, "sweeps", "sweep-mlp", "result.json")
    with open(summary_file) as f:
        summary = json.load(f)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(summary["journal"]))
    result = summarize(optuna.load_study(study_name=summary["study"], storage=storage))
    result["test_accuracy"] = summary["winner_metrics"]["eval/accuracy"]
    result["wall_s"] = wall
    result["trial_overhead_s"] = summary.get("trial_overhead_s")
    result["version"] = subprocess.run([args.kiln, "version"], capture_output=True,
                                       text=True).stdout.splitlines()[0]
    return result


FIGURES = ("best_validation_accuracy", "test_accuracy", "epochs", "pruned", "wall_s")


def print_rows(label, results):
    for side, r in results.items():
        print(f"{label:7} {side:7} {r['best_validation_accuracy']:9.4f} {r['test_accuracy']:7.4f} "
              f"{r['epochs']:7g} {r['pruned']:7g} {r['wall_s']:8.1f}  {r.get('version', '')}")


def targets(k, o):
    return (f"best val {k['best_validation_accuracy'] - o['best_validation_accuracy']:+.4f} "
            f"(>= -0.003), epochs {k['epochs']:g} vs {o['epochs']:g} (<=), "
            f"wall {k['wall_s'] / o['wall_s']:.2f}x (<= 0.5x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiln", default=os.path.join(HERE, "..", "build", "bin", "kiln"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--only", choices=["kiln", "optuna"])
    parser.add_argument("--repeat", type=int, default=1,
                        help="run both sides this many times, one after the other, and compare "
                             "the medians too: Optuna's two workers draw differently every run")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    runs = []
    print(f"{'run':7} {'side':7} {'best val':>9} {'test':>7} {'epochs':>7} {'pruned':>7} "
          f"{'wall s':>8}  version", flush=True)
    for number in range(1, args.repeat + 1):
        run = {}
        with tempfile.TemporaryDirectory() as work:
            if args.only != "optuna":
                run["kiln"] = run_kiln(args, work)
            if args.only != "kiln":
                run["optuna"] = run_optuna(args, work)
        runs.append(run)
        print_rows(str(number), run)
        if len(run) == 2:
            print(f"        targets: {targets(run['kiln'], run['optuna'])}", flush=True)
    medians = {side: {figure: statistics.median(run[side][figure] for run in runs)
                      for figure in FIGURES}
               for side in runs[0]}
    if args.repeat > 1:
        print_rows("median", medians)
        if len(medians) == 2:
            print(f"        targets: {targets(medians['kiln'], medians['optuna'])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "medians": medians}, f, indent=2)


if __name__ == "__main__":
    main()
