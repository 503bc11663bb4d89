#!/usr/bin/env python3
"""Data larger than memory, end to end (issue #16): an HDF5 file written by h5py
(nested groups, chunked, gzip; 32x32x3 u8 images and u16 labels) is imported,
validated and trained on for one epoch of an MLP under a memory budget. Prints and
appends to --out one Markdown row per step: wall time, throughput, peak RSS of kiln
and every process it started (kiln-hdf5-reader included), and for training the
share of step time spent waiting for data.

    .venv/bin/python benchmarks/large_hdf5.py --gib 20 --budget-mib 1024 --work /var/tmp/big

The file is written once and reused (--work keeps it). Not a test: it takes a long
time and a lot of disk (the source, about half of --gib with gzip, plus the version).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

ROW = (32, 32, 3)
ROW_BYTES = 32 * 32 * 3
HERE = Path(__file__).resolve().parent.parent


def write_source(path, rows, seed=0):
    """Images with structure (a per-row gradient plus noise in the low bits), so that
    gzip finds something to compress, as in real photographs."""
    rng = np.random.default_rng(seed)
    block = 65536
    ramp = np.arange(ROW_BYTES, dtype=np.uint32).reshape(ROW)
    with h5py.File(path, "w") as f:
        images = f.create_dataset("train/images", shape=(rows,) + ROW, dtype="u1",
                                  chunks=(1024,) + ROW, compression="gzip", compression_opts=4)
        labels = f.create_dataset("train/labels", shape=(rows,), dtype="u2",
                                  chunks=(65536,), compression="gzip")
        for first in range(0, rows, block):
            n = min(block, rows - first)
            base = (np.arange(first, first + n, dtype=np.uint32) * 2654435761 >> 24)[:, None, None, None]
            noise = rng.integers(0, 16, size=(n,) + ROW, dtype=np.uint8)
            images[first:first + n] = ((base + ramp // 12) % 240).astype(np.uint8) + noise
            labels[first:first + n] = rng.integers(0, 10, n, dtype=np.uint16)


def run(step, argv, env):
    """Runs one kiln command in a fresh Python child, so that RUSAGE_CHILDREN there
    holds the peak of that command and its descendants alone."""
    probe = ("import resource, subprocess, sys, time; t = time.monotonic(); "
             "rc = subprocess.call(sys.argv[1:]); "
             "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
             "time.monotonic() - t, rc)")
    out = subprocess.run([sys.executable, "-c", probe] + argv, env=env, text=True,
                         capture_output=True)
    last = [line for line in out.stdout.splitlines() if line.startswith("PEAK")][-1].split()
    peak_kib, seconds, rc = int(last[1]), float(last[2]), int(last[3])
    if rc != 0:
        sys.exit(f"{step} failed ({rc}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return peak_kib / 1024, seconds, out.stdout + out.stderr


def mlflow_metric(registry, name):
    values = []
    for path in Path(registry, "mlruns").glob(f"*/*/metrics/{name}"):
        values += [float(line.split()[1]) for line in path.read_text().splitlines()]
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=20.0, help="uncompressed size of the images")
    parser.add_argument("--budget-mib", type=int, default=1024)
    parser.add_argument("--work", default="/var/tmp/kiln-large-hdf5")
    parser.add_argument("--kiln", default=str(HERE / "build/bin/kiln"))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--steps", default="data,validate,train",
                        help="which steps to run, in order (data first)")
    parser.add_argument("--out", help="append the table rows to this file")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = int(args.gib * 2**30) // ROW_BYTES
    source = work / f"images-{rows}.h5"
    if not source.exists():
        start = time.monotonic()
        write_source(str(source) + ".partial", rows)
        os.rename(str(source) + ".partial", source)
        print(f"wrote {source}: {rows} rows in {time.monotonic() - start:.0f} s")
    size = source.stat().st_size
    registry = work / "registry"
    subprocess.run(["rm", "-rf", str(registry)], check=True)
    pipeline = work / "large.yaml"
    pipeline.write_text(json.dumps({
        "name": "large-hdf5",
        "stages": {
            "data": {"uses": "import", "with": {
                "source": str(source), "name": "large",
                "arrays": {"x": "/train/images", "y": "/train/labels"}}},
            "validate": {"uses": "validate", "needs": ["data"], "with": {
                "schema": {"x": {"dtype": "u8", "shape": [-1, 32, 32, 3]}},
                "classes": list(range(10))}},
            "train": {"uses": "train", "needs": ["validate"], "with": {
                "model": {"layers": ["flatten", {"linear": {"out": 256}}, "relu",
                                     {"linear": {"out": 10}}]},
                "epochs": 1, "batch_size": 256, "optimizer": "adamw", "lr": 1e-3,
                "memory_mb": args.budget_mib, "threads": args.threads, "log_every": 200}},
        }}))
    env = dict(os.environ, KILN_IMPORT_MEMORY_BUDGET=str(args.budget_mib << 20),
               KILN_PLAIN_PROGRESS="1")
    results = []
    for step in args.steps.split(","):
        peak, seconds, log = run(step, [args.kiln, "--registry", str(registry), "run",
                                        str(pipeline), "--only", step], env)
        detail = ""
        if step == "data":
            detail = f"{rows * ROW_BYTES / seconds / 1e6:.0f} MB/s of images ({size / seconds / 1e6:.0f} MB/s of file)"
        elif step == "validate":
            detail = f"{rows * ROW_BYTES / seconds / 1e6:.0f} MB/s of images"
        else:
            wait, step_ms = mlflow_metric(registry, "train/data_wait_ms"), mlflow_metric(registry, "train/step_ms")
            share = sum(wait) / sum(step_ms) if step_ms and sum(step_ms) else float("nan")
            detail = f"{rows / seconds:.0f} samples/s over the whole stage; data wait {100 * share:.1f}% of step time"
        results.append(f"| {step} | {seconds:.0f} | {peak:.0f} | {detail} |")
        print(results[-1], flush=True)
    header = [f"{rows} rows ({rows * ROW_BYTES / 2**30:.1f} GiB of images, {size / 2**30:.1f} GiB file), "
              f"budget {args.budget_mib} MiB",
              "", "| step | wall s | peak RSS MiB | throughput |", "| --- | --- | --- | --- |"]
    if args.out:
        with open(args.out, "a") as out:
            out.write("\n".join(header + results) + "\n")


if __name__ == "__main__":
    main()
