#!/usr/bin/env bash
# Installs what kiln needs on Debian 12: build tools, libraries,
# the Fashion-MNIST data set, Python packages for the interoperability tests.
# Idempotent: packages already present are left alone, the venv is reused.
# Usage: tools/install-deps.sh [--no-python]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
with_python=1
[[ "${1:-}" == "--no-python" ]] && with_python=0

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libyaml-cpp-dev libhdf5-dev hdf5-tools libspdlog-dev libfmt-dev libcli11-dev
  # HDF5 filter plugins, so that an import reads what h5py and other tools compress
  # with: LZF (h5py's own), Blosc, LZ4, BZip2, Bitshuffle (docs/formats.md). Debian
  # 12's LZF plugin does not pull in liblzf1, which it needs (kiln-hdf5-reader loads it).
  hdf5-plugin-lzf liblzf1 hdf5-filter-plugin hdf5-filter-plugin-blosc-serial
  # XXH3-128 row digests for validation's duplicate and overlap checks.
  libxxhash-dev
  nlohmann-json3-dev libopenblas-dev libopenblas-openmp-dev libdnnl-dev libgloo-dev libssl-dev zlib1g-dev
  # libzip: reading NPZ archives (numpy.savez) in `kiln data import`.
  libzip-dev
  patchelf xz-utils
  libgtest-dev libgmock-dev libbenchmark-dev
  dataset-fashion-mnist
  python3 python3-venv python3-numpy python3-h5py python3-torch
  slurm-wlm chromium
  # tools/fuzz.sh: libFuzzer, its sanitizer runtimes and OpenMP for clang. Clang 16,
  # not Debian's default 14: clang 14 lacks __builtin_source_location, so GCC 12's
  # <source_location> (kiln/error.h) is empty under it.
  clang-16 libclang-rt-16-dev libomp-16-dev
  # llvm-symbolizer-16: function names and lines in ASan/UBSan reports (the asan
  # preset's tests and the fuzzers).
  llvm-16
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  ((EUID == 0)) || sudo="sudo"
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi

if ((with_python)); then
  # One venv from Debian's interpreter; it sees python3-torch/h5py/numpy and adds
  # what Debian lacks for the interoperability tests.
  venv="$here/.venv"
  [[ -x "$venv/bin/python" ]] || /usr/bin/python3 -m venv --system-site-packages "$venv"
  # "numpy<2": Debian's numpy (1.24) stays; python3-torch is built against numpy 1.x,
  # and a newer onnx would otherwise pull numpy 2 into the venv.
  pip_packages=(mlflow-skinny tensorboard onnxruntime safetensors optuna onnx "numpy<2")
  if ! "$venv/bin/python" -c 'import mlflow, tensorboard, onnxruntime, safetensors, optuna, onnx' 2>/dev/null; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pip_packages[@]}"
  fi
fi
echo "install-deps: done"
