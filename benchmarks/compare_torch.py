#!/usr/bin/env python3
"""Trains the same models on the same data with the same batch size and thread
count in PyTorch and in kiln, in one run, and prints samples/s of each and the
ratio (SPEC section 12).

  benchmarks/compare_torch.py [--kiln build/bin/kiln] [--device cpu|cuda]
                              [--threads 2] [--models mlp,cnn]
                              [--rounds 3] [--data DIR] [--json FILE]
                              [--precision f32[,bf16]] [--hogs N]
                              [--kiln-threads N]

Both sides train one epoch of Fashion-MNIST (batch 128, AdamW, lr 1e-3) from the
IDX files of Debian's dataset-fashion-mnist (or --data DIR holding the same four
files). kiln runs the real `train` stage
through `kiln run` (data import cached in a scratch registry); its throughput is
the median of the train/samples_per_s windows it logs, the first window left out
as warm-up. PyTorch's is measured the same way: windows of 20 steps, median,
first window left out. The two sides alternate for --rounds rounds and each
reports the median over its rounds, so that a machine whose speed drifts (shared
hosts) biases neither. Use /usr/bin/python3 for Debian's python3-torch.

--precision f32,bf16 also trains kiln with `precision: bf16` (oneDNN's bf16 GEMMs
and convolutions where the CPU has them) and reports it against kiln's own f32;
PyTorch trains in f32 only.

--hogs N measures every round twice: on a quiet machine, then with N busy loops
(`sh -c 'while :; do :; done'`) running, both sides, started a second before.
--kiln-threads 0 lets kiln choose its threads as `threads: 0` does by default
(all cores when they are quiet, fewer when others keep them busy); the peer keeps
--threads.

The PyTorch side is torch_peer.py (beside this script), which also gives the peer
its best OpenBLAS settings (see its header). `kiln bench train --peer torch` runs the
same comparison as a bench run in the registry; this script adds --hogs, bf16 and
CUDA.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


KILN_ENV = {**os.environ, "KILN_PLAIN_PROGRESS": "1"}
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_peer  # noqa: E402 (sets the peer's OpenBLAS variables before numpy loads)


DATA = "/usr/share/datasets/fashion-mnist"
WINDOW = 20  # steps per throughput window, both sides

MODELS = {
    # kiln layer lists (the same architectures as configs/fmnist_*.yaml)
    "mlp": ["flatten", {"linear": {"out": 256}}, "relu", {"linear": {"out": 128}}, "relu",
            {"linear": {"out": 10}}],
    "cnn": [{"conv2d": {"out": 32, "kernel": 3, "padding": 1}}, "relu", {"maxpool2d": {"kernel": 2}},
            {"conv2d": {"out": 64, "kernel": 3, "padding": 1}}, "relu", {"maxpool2d": {"kernel": 2}},
            "flatten", {"linear": {"out": 128}}, "relu", {"linear": {"out": 10}}],
}


def torch_samples_per_s(name, device, threads, batch, data):
    import torch
    windows = torch_peer.train_windows(name, f"{data}/train-images-idx3-ubyte.gz",
                                       f"{data}/train-labels-idx1-ubyte.gz", device, threads,
                                       batch, WINDOW)
    return statistics.median(windows[1:]), torch.__version__


def kiln_samples_per_s(name, kiln, device, threads, batch, work, data, precision):
    pipeline = {
        "name": f"bench-{name}",
        "stages": {
            "train_data": {"uses": "idx_import", "with": {
                "images": f"{data}/train-images-idx3-ubyte.gz",
                "labels": f"{data}/train-labels-idx1-ubyte.gz"}},
            "train": {"uses": "train", "needs": ["train_data"], "with": {
                "model": {"input": [1, 28, 28], "layers": MODELS[name]},
                "epochs": 1, "batch_size": batch, "optimizer": "adamw", "lr": 1e-3,
                "threads": threads, "log_every": WINDOW, "checkpoint_every": 0,
                "device": device, "precision": precision}},
        },
    }
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w") as f:
        json.dump(pipeline, f)  # JSON is YAML
    registry = os.path.join(work, "registry")
    subprocess.run([kiln, "--registry", registry, "run", path, "--force", "train"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=KILN_ENV)
    runs = os.path.join(registry, "mlruns")
    newest = max((os.path.join(runs, e, r) for e in os.listdir(runs) if e.isdigit()
                  for r in os.listdir(os.path.join(runs, e)) if os.path.isdir(os.path.join(runs, e, r))),
                 key=os.path.getmtime)
    with open(os.path.join(newest, "metrics", "train", "samples_per_s")) as f:
        rates = [float(line.split()[1]) for line in f]
    return statistics.median(rates[1:])


class Hogs:
    """`count` busy loops (other processes keeping the cores busy) while inside."""

    def __init__(self, count):
        self.count, self.processes = count, []

    def __enter__(self):
        self.processes = [subprocess.Popen(["sh", "-c", "while :; do :; done"])
                          for _ in range(self.count)]
        time.sleep(1 if self.count else 0)
        return self

    def __exit__(self, *_):
        for process in self.processes:
            process.kill()
            process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiln", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "kiln"))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kiln-threads", type=int,
                        help="kiln's threads if not --threads; 0: kiln's default, which "
                             "leaves out the cores it finds busy at start (with --hogs)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default=DATA, help="folder with the Fashion-MNIST IDX .gz files")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--precision", default="f32", help="kiln's precisions, e.g. f32,bf16")
    parser.add_argument("--hogs", type=int, default=0,
                        help="also measure with N busy loops running (a shared node)")
    args = parser.parse_args()
    kiln_threads = args.threads if args.kiln_threads is None else args.kiln_threads
    precisions = args.precision.split(",")
    conditions = [0] + ([args.hogs] if args.hogs else [])
    results = []
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as work:
        for name in args.models.split(","):
            kiln_rates = {(h, p): [] for h in conditions for p in precisions}
            torch_rates = {h: [] for h in conditions}
            for _ in range(args.rounds):
                for hogs in conditions:
                    with Hogs(hogs):
                        for precision in precisions:
                            kiln_rates[hogs, precision].append(kiln_samples_per_s(
                                name, os.path.abspath(args.kiln), args.device, kiln_threads,
                                args.batch, work, os.path.abspath(args.data),
                                precision))
                        rate, torch_version = torch_samples_per_s(
                            name, args.device, args.threads, args.batch, args.data)
                        torch_rates[hogs].append(rate)
            for hogs in conditions:
                torch_rate = statistics.median(torch_rates[hogs])
                for precision in precisions:
                    kiln = statistics.median(kiln_rates[hogs, precision])
                    results.append({
                        "model": name, "device": args.device, "threads": args.threads,
                        "kiln_threads": kiln_threads,
                        "batch": args.batch, "precision": precision, "hogs": hogs,
                        "torch": torch_version,
                        "peer_openblas": {k: os.environ.get(k, "") for k in
                                          ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS")},
                        "rounds": args.rounds, "torch_samples_per_s": round(torch_rate),
                        "kiln_samples_per_s": round(kiln),
                        "torch_rounds": [round(r) for r in torch_rates[hogs]],
                        "kiln_rounds": [round(r) for r in kiln_rates[hogs, precision]],
                        "ratio": round(kiln / torch_rate, 2)})
    settings = " ".join(f"{k}={v or '(unset)'}" for k, v in results[0]["peer_openblas"].items())
    print(f"peer: torch {results[0]['torch']}, {settings}")
    print(f"{'model':<6} {'device':<6} {'threads':>7} {'batch':>5} {'hogs':>4} {'kiln precision':>14} "
          f"{'torch samples/s':>16} {'kiln samples/s':>15} {'ratio':>6}")
    for r in results:
        print(f"{r['model']:<6} {r['device']:<6} {r['threads']:>7} {r['batch']:>5} {r['hogs']:>4} "
              f"{r['precision']:>14} {r['torch_samples_per_s']:>16} {r['kiln_samples_per_s']:>15} "
              f"{r['ratio']:>6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
