#!/usr/bin/env bash
# Prepares the one call of tools/gpu-check.sh on a lent GPU machine
# (docs/gpu-check.md): the bundle of a CUDA build and the Fashion-MNIST files go
# into .gpu/ (ignored by git, carried by the call), and the size of what travels is
# checked against the 64 MiB the call takes.
#
#   tools/gpu-prepare.sh [BUILD_DIR]      default: build (the `default` preset)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$here/build}")
data=/usr/share/datasets/fashion-mnist
limit_mib=64

die() { echo "gpu-prepare.sh: $*" >&2; exit 1; }
grep -q '^KILN_CUDA:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null ||
  die "$build is not a CUDA build (cmake --preset default with the CUDA toolkit)"
[[ -f "$data/train-images-idx3-ubyte.gz" ]] ||
  die "$data: no Fashion-MNIST (tools/install-deps.sh installs dataset-fashion-mnist)"

rm -rf "$here/.gpu"
mkdir -p "$here/.gpu/data"
"$here/tools/bundle.sh" "$build" "$here/.gpu/kiln-bundle.tar.xz"
cp "$data"/*-ubyte.gz "$here/.gpu/data/"

# What the call sends: tracked and untracked-not-ignored files, plus .gpu/.
tree_bytes=$(git -C "$here" ls-files -z --cached --others --exclude-standard |
  (cd "$here" && xargs -0 stat -c %s 2>/dev/null) | awk '{s += $1} END {print s + 0}')
gpu_bytes=$(du -sb "$here/.gpu" | cut -f1)
total_mib=$(((tree_bytes + gpu_bytes) / 1024 / 1024))
echo "travels: $((tree_bytes / 1024 / 1024)) MiB of tree + $((gpu_bytes / 1024 / 1024)) MiB in .gpu = $total_mib MiB (limit $limit_mib)"
((total_mib < limit_mib)) || die "$total_mib MiB would not travel: the limit is $limit_mib MiB"
echo "ready: run 'tools/gpu-check.sh .gpu/kiln-bundle.tar.xz .gpu/data \$OUT' with carry [.gpu]"
