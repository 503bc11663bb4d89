#!/usr/bin/env bash
# The prepared check for a GPU machine that has no package access and only minutes
# to spare (issue: CUDA backend). Unpacks a bundle made by tools/bundle.sh, finds
# that machine's own CUDA runtime, cuBLAS, cuDNN and NCCL (its CUDA toolkit, or the
# NVIDIA wheels beside its PyTorch), then runs, in order of value:
#   tests      every CUDA test (test suites named *cuda*, whole; the GPU cases of
#              the other suites, by their names)
#   quickstart configs/quickstart.yaml with train.with.device=cuda
#   nccl       the quickstart as one data-parallel rank (kiln run --nproc 1: NCCL
#              end to end), and the NCCL all-reduce benchmark where there are >= 2 GPUs
#   compare    benchmarks/compare_torch.py --device cuda (kiln against PyTorch eager)
#   bench      the GPU micro benchmarks
#   cnn        configs/fmnist_cnn.yaml on the GPU: accuracy and train time
# Full logs go to LOG_DIR; a short table is printed last.
#
#   tools/gpu-check.sh BUNDLE.tar.xz DATA_DIR LOG_DIR
#
# DATA_DIR holds the four Fashion-MNIST IDX .gz files. Environment:
#   GPU_CHECK_STEPS     which steps to run (default: "tests quickstart nccl compare bench cnn")
#   GPU_CHECK_BUDGET_S  seconds for the whole check (default 480); a step that cannot
#                       finish inside what is left is skipped and says so
set -uo pipefail

die() { echo "gpu-check.sh: $*" >&2; exit 2; }
(($# == 3)) || die "usage: tools/gpu-check.sh BUNDLE.tar.xz DATA_DIR LOG_DIR"
bundle=$(realpath "$1") data=$(realpath "$2") logs=$(realpath -m "$3")
[[ -f "$bundle" ]] || die "$1: no such bundle"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
  t10k-labels-idx1-ubyte.gz; do
  [[ -f "$data/$f" ]] || die "$data/$f: missing (DATA_DIR must hold the Fashion-MNIST IDX files)"
done
steps=${GPU_CHECK_STEPS:-tests quickstart nccl compare bench cnn}
deadline=$((SECONDS + ${GPU_CHECK_BUDGET_S:-480}))
mkdir -p "$logs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

summary=()
row() { summary+=("$(printf '%-11s %-8s %s' "$1" "$2" "$3")"); }
left() { echo $((deadline - SECONDS)); }
# want STEP SECONDS: true when STEP is selected and SECONDS remain.
want() {
  [[ " $steps " == *" $1 "* ]] || return 1
  if (($(left) < $2)); then
    row "$1" skipped "needs ~$2 s, $(left) s left"
    return 1
  fi
}

tar -C "$work" -xJf "$bundle" || die "$bundle: cannot unpack"
kiln=$work/kiln/bin/kiln
echo "== bundle"; cat "$work/kiln/share/kiln/BUNDLE.txt"

# The machine's own libraries: the toolkit's first, then any pip wheel's.
libdirs=()
add_dir() { [[ -d "$1" && " ${libdirs[*]} " != *" $1 "* ]] && libdirs+=("$1"); }
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib; do
  add_dir "$d"
done
for name in libcudart.so.13 libcublasLt.so.13 libcublas.so.13 libcudnn.so.9 libnccl.so.2; do
  found=$(ldconfig -p | awk -v n="$name" '$1 == n {print $NF; exit}')
  if [[ -z "$found" ]]; then
    for d in "${libdirs[@]}"; do [[ -e "$d/$name" ]] && found=$d/$name && break; done
  fi
  [[ -n "$found" ]] ||
    found=$(find /usr/local /usr/lib /opt /root -name "$name" 2>/dev/null | head -1)
  if [[ -n "$found" ]]; then
    add_dir "$(dirname "$found")"
    echo "found $name: $found"
  else
    echo "MISSING $name"
  fi
done
export LD_LIBRARY_PATH=$(IFS=:; echo "${libdirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
export KILN_PLAIN_PROGRESS=1

echo "== nvidia-smi"
nvidia-smi 2>&1 | tee "$logs/nvidia-smi.txt"
card=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
row card info "${card:-nvidia-smi failed}"
"$kiln" version 2>&1 | tee "$logs/kiln-version.txt"

if want tests 60; then
  echo "== tests"
  passed=0 failed=0 skipped=0 failures=()
  for program in "$work"/kiln/libexec/kiln/tests/*_tests; do
    name=$(basename "$program")
    filter='*'
    [[ "$name" == *cuda* ]] || filter='*Cuda*:*CUDA*:*Gpu*:*GPU*'
    timeout 180 "$program" --gtest_filter="$filter" --gtest_brief=0 >"$logs/$name.log" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$logs/$name.log" | tail -1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$logs/$name.log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$logs/$name.log" | tail -1)
    passed=$((passed + ${p:-0})) skipped=$((skipped + ${s:-0})) failed=$((failed + ${f:-0}))
    if ((rc != 0)); then
      failures+=("$name(rc=$rc)")
      ((${f:-0} > 0)) || failed=$((failed + 1))
      grep -E '^\[  FAILED  \] [A-Za-z]' "$logs/$name.log" | sort -u | head -20
    fi
    echo "$name: passed ${p:-0}, skipped ${s:-0}, failed ${f:-0}, rc $rc"
  done
  result=ok
  ((passed > 0)) || result=NONE  # a CUDA build has GPU tests: none ran is a failure too
  ((failed == 0)) || result=FAILED
  row tests "$result" "passed $passed, failed $failed, skipped $skipped ${failures[*]:-}"
fi

# quickstart_overrides: the pipeline reads DATA_DIR instead of Debian's data set.
data_overrides=(
  "train_data.with.images=$data/train-images-idx3-ubyte.gz"
  "train_data.with.labels=$data/train-labels-idx1-ubyte.gz"
  "test_data.with.images=$data/t10k-images-idx3-ubyte.gz"
  "test_data.with.labels=$data/t10k-labels-idx1-ubyte.gz"
)

# run_pipeline NAME CONFIG TIMEOUT [OVERRIDES...]: one kiln run on the GPU.
run_pipeline() {
  local name=$1 config=$2 limit=$3
  shift 3
  local start=$SECONDS
  timeout "$limit" "$kiln" --registry "$work/registry-$name" run "$work/kiln/share/kiln/configs/$config" \
    "${data_overrides[@]}" train.with.device=cuda "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  local accuracy rate
  accuracy=$(sed -n 's/.*evaluate: accuracy \([0-9.]*\).*/\1/p' "$logs/$name.log" | tail -1)
  rate=$(sed -n 's/.*step \([0-9]*\)\/\1 100%.* \([0-9.]*\) samples\/s.*/\2/p' "$logs/$name.log" | tail -1)
  local train_s
  train_s=$(sed -n 's/.*stage train (train): done in \([0-9.]*\) s.*/\1/p' "$logs/$name.log" | tail -1)
  tail -5 "$logs/$name.log"
  local result=ok
  ((rc == 0)) || result="FAILED"
  row "$name" "$result" "rc $rc, accuracy ${accuracy:-?}, train ${train_s:-?} s, last window ${rate:-?} samples/s, total $((SECONDS - start)) s"
}

if want quickstart 90; then
  echo "== quickstart on the GPU"
  run_pipeline quickstart quickstart.yaml 240
fi

if want nccl 90; then
  echo "== quickstart as one NCCL rank (--nproc 1)"
  run_pipeline nccl-rank quickstart.yaml 240 --nproc 1
  grep -m1 'dist: rank 0 of 1 joined' "$logs/nccl-rank.log"
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
  if ((gpus >= 2)); then
    timeout 120 "$work/kiln/libexec/kiln/benchmarks/allreduce_benchmark" --device cuda \
      --ranks "$gpus" --max-mb 256 >"$logs/allreduce_nccl.log" 2>&1
    rc=$?
    cat "$logs/allreduce_nccl.log"
    row nccl-bw "$( ((rc == 0)) && echo ok || echo FAILED)" \
      "$gpus ranks, largest size: $(tail -1 "$logs/allreduce_nccl.log")"
  else
    row nccl-bw skipped "$gpus GPU(s) here: an all-reduce bandwidth needs two or more"
  fi
fi

if want compare 120; then
  echo "== compare_torch --device cuda"
  timeout 300 python3 "$work/kiln/share/kiln/benchmarks/compare_torch.py" --kiln "$kiln" \
    --device cuda --data "$data" --rounds 1 --json "$logs/compare_torch.json" \
    >"$logs/compare_torch.log" 2>&1
  rc=$?
  cat "$logs/compare_torch.log" | tail -4
  if ((rc == 0)); then
    while read -r model device _ _ torch_rate kiln_rate ratio; do
      [[ "$model" == mlp || "$model" == cnn ]] &&
        row "vs-torch" ok "$model on $device: kiln $kiln_rate, torch $torch_rate samples/s, ratio $ratio"
    done <"$logs/compare_torch.log"
  else
    row vs-torch FAILED "rc $rc, see compare_torch.log"
  fi
fi

if want bench 60; then
  echo "== GPU micro benchmarks"
  for program in "$work"/kiln/libexec/kiln/benchmarks/*_benchmark; do
    name=$(basename "$program")
    filter='.'
    [[ "$name" == *cuda* ]] || filter='[Cc][Uu][Dd][Aa]'
    timeout 120 "$program" --benchmark_filter="$filter" --benchmark_min_time=0.05 \
      --benchmark_counters_tabular=true >"$logs/$name.log" 2>&1
    rc=$?
    lines=$(grep -c '^[A-Za-z].*/' "$logs/$name.log")
    ((lines > 0)) || continue
    cat "$logs/$name.log"
    row "bench" "$( ((rc == 0)) && echo ok || echo FAILED)" "$name: $lines results, rc $rc"
  done
fi

if want cnn 150; then
  echo "== fmnist_cnn on the GPU"
  run_pipeline cnn fmnist_cnn.yaml $(( $(left) - 10 ))
fi

echo
echo "== gpu-check summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(grep '^commit' "$work/kiln/share/kiln/BUNDLE.txt"))"
printf '%s\n' "${summary[@]}"
