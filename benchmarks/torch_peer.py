#!/usr/bin/env python3
"""The PyTorch peer of kiln's training benchmarks: the MLP or the CNN of
`kiln bench train` trained in PyTorch for one epoch on the same IDX files, with the
same batch size, optimizer (AdamW, lr 1e-3) and thread count. Prints one JSON line:
the samples/s of every window of --window steps, in order (the caller leaves out the
first as warm-up and takes the median), and the torch version.

  torch_peer.py --model mlp|cnn --images FILE --labels FILE [--threads N]
                [--batch 128] [--window 20] [--device cpu|cuda]
  torch_peer.py --version        (exit 1 when torch cannot be imported)

Used by `kiln bench train --peer torch` (installed as share/kiln/bench/) and by
benchmarks/compare_torch.py.

The peer's best settings. Debian's PyTorch does its CPU GEMMs in OpenBLAS (the
pthreads build), beside its own OpenMP pool:
- OpenBLAS picks its kernels by CPU model and, for a model it does not know
  (OpenBLAS 0.3.21 on an Emerald Rapids Xeon), falls back to its SSE3 ("Prescott")
  kernels, 3x slower. On a CPU with AVX-512 this sets OPENBLAS_CORETYPE=SkylakeX.
- OpenBLAS's threads and PyTorch's spinning OpenMP threads fight over the cores:
  the MLP ran at 15-25k samples/s with both pools on 2 cores, 58-61k with
  OPENBLAS_NUM_THREADS=1 (one pool), and the CNN gained too (2026-12-06, 2 cores).
  This sets OPENBLAS_NUM_THREADS=1.
Either is left alone when already set; both are set before numpy and torch load
OpenBLAS.
"""
import argparse
import gzip
import json
import os
import sys
import time


def avx512_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


if avx512_cpu():
    os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402 (after the settings: numpy loads OpenBLAS too)


def torch_model(name):
    import torch.nn as nn
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                             nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def read_idx(path):
    """An IDX file, gzip-compressed or not, as a numpy array."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def train_windows(name, images, labels, device="cpu", threads=1, batch=128, window=20):
    """Trains one epoch; returns samples/s of each window of `window` steps."""
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.from_numpy(read_idx(images).astype(np.float32) / 255.0)
    x = x.reshape(-1, 1, 28, 28).to(device)
    y = torch.from_numpy(read_idx(labels).astype(np.int64)).to(device)
    model = torch_model(name).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0)).to(device)
    rates = []
    start, steps = time.perf_counter(), 0
    for first in range(0, x.shape[0], batch):
        index = order[first:first + batch]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[index]), y[index])
        loss.backward()
        optimizer.step()
        steps += 1
        if steps == window:
            if device == "cuda":
                torch.cuda.synchronize()
            now = time.perf_counter()
            rates.append(window * batch / (now - start))
            start, steps = now, 0
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print torch's version and exit")
    parser.add_argument("--model", choices=["mlp", "cnn"])
    parser.add_argument("--images")
    parser.add_argument("--labels")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--window", type=int, default=20)
    args = parser.parse_args()
    try:
        import torch
    except ImportError as error:
        print(f"torch_peer.py: torch cannot be imported: {error}", file=sys.stderr)
        return 1
    if args.version:
        print(torch.__version__)
        return 0
    if not (args.model and args.images and args.labels):
        parser.error("--model, --images and --labels are required")
    windows = train_windows(args.model, args.images, args.labels, args.device, args.threads,
                            args.batch, args.window)
    settings = {k: os.environ.get(k, "") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS")}
    print(json.dumps({"windows": windows, "torch": torch.__version__, "settings": settings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
