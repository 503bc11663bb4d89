#!/usr/bin/env bash
# The prepared check for a GPU machine that has no package access and only minutes
# to spare (docs/gpu-check.md says how to make the call). Unpacks a bundle made by
# tools/bundle.sh, finds that machine's own cuBLASLt, cuDNN and NCCL (its CUDA
# toolkit, or the NVIDIA wheels beside its PyTorch), checks up front that kiln can
# load and that the driver is new enough, then runs, in order of value:
#   tests      every CUDA test: each test suite of the *cuda* programs on its own,
#              and the GPU cases of the other programs (selected by name, see
#              GPU_TEST_FILTER below)
#   quickstart configs/quickstart.yaml with train.with.device=cuda
#   nccl       the quickstart as one data-parallel rank (kiln run --nproc 1: NCCL
#              end to end), and the NCCL all-reduce benchmark where there are >= 2 GPUs
#   compare    benchmarks/compare_torch.py --device cuda (kiln against PyTorch eager)
#   bench      the GPU micro benchmarks
#   cnn        configs/fmnist_cnn.yaml on the GPU: accuracy and train time
#
#   tools/gpu-check.sh BUNDLE.tar.xz DATA_DIR OUT_DIR
#   tools/gpu-check.sh --list-tests TEST_PROGRAM...   the GPU cases each program would run
#
# DATA_DIR holds the four Fashion-MNIST IDX .gz files. OUT_DIR receives exactly two
# files, both rewritten as the check goes, so that whatever kills it (the outer
# limit, SIGKILL) leaves them readable:
#   summary.txt   one row per result, appended the moment it is known
#   logs.tar.xz   every step's full log, re-packed after each step
# Every step runs under `timeout -k`: SIGTERM at its limit (kiln takes the first one
# as "stop at the next step"), SIGKILL a grace period later (a step hung in a CUDA
# or NCCL wait ignores SIGTERM). No limit reaches past the budget that is left.
#
# Environment:
#   GPU_CHECK_STEPS     which steps to run (default: "tests quickstart nccl compare bench cnn")
#   GPU_CHECK_BUDGET_S  seconds for the whole check (default 480); a step that cannot
#                       get its minimum inside what is left is skipped and says so
#   GPU_CHECK_DRY=1     the dry run, for a machine without a GPU: no driver check,
#                       every step runs its real command line on the CPU (device
#                       overrides replaced by cpu, one epoch), to prove the mechanics
#   GPU_CHECK_PYTHON    the Python with torch and numpy for the compare step (default python3)
#   GPU_CHECK_HANG_STEP a step name (tests only): after that step's command ran, its
#                       process keeps going and ignores SIGTERM, as a hung CUDA wait does
set -uo pipefail

# Selects every GPU test case by name, in any of the spellings the suites use
# (TrainerCuda.*, .../cuda0, CUDA_*, Gpu*). gtest filters are case-sensitive and
# know no character classes, hence the list. tests/gpu_check checks it against the
# names of every test in the build.
GPU_TEST_FILTER='*Cuda*:*CUDA*:*cuda*:*Gpu*:*GPU*:*gpu*'
# CUDA 13's runtime needs a driver of the R580 branch or newer (minor-version
# compatibility covers every 13.x with it).
MIN_DRIVER_MAJOR=580
KILL_GRACE_S=10

die() { echo "gpu-check.sh: $*" >&2; exit 2; }

if [[ "${1:-}" == "--list-tests" ]]; then
  shift
  for program in "$@"; do
    "$program" --gtest_list_tests --gtest_filter="$GPU_TEST_FILTER" |
      awk -v p="$(basename "$program")" '/^[^ ]/ {suite = $1} /^  / {print p " " suite $1}'
  done
  exit 0
fi

(($# == 3)) || die "usage: tools/gpu-check.sh BUNDLE.tar.xz DATA_DIR OUT_DIR"
bundle=$(realpath "$1") data=$(realpath "$2") out=$(realpath -m "$3")
[[ -f "$bundle" ]] || die "$1: no such bundle"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
  t10k-labels-idx1-ubyte.gz; do
  [[ -f "$data/$f" ]] || die "$data/$f: missing (DATA_DIR must hold the Fashion-MNIST IDX files)"
done
steps=${GPU_CHECK_STEPS:-tests quickstart nccl compare bench cnn}
budget=${GPU_CHECK_BUDGET_S:-480}
dry=${GPU_CHECK_DRY:-0}
hang_step=${GPU_CHECK_HANG_STEP:-}
deadline=$((SECONDS + budget))
mkdir -p "$out"
summary=$out/summary.txt archive=$out/logs.tar.xz
: >"$summary"
rm -f "$archive"
work=$(mktemp -d)
logs=$work/logs
mkdir -p "$logs"
step_pid=""

# row NAME RESULT TEXT: one summary row, on disk and on stdout at once.
row() {
  local line
  line=$(printf '%-11s %-8s %s' "$1" "$2" "$3")
  echo "$line" >>"$summary"
  echo "| $line"
}
left() { echo $((deadline - SECONDS)); }
pack() {
  tar -C "$work" -cJf "$archive.partial" logs 2>/dev/null && mv -f "$archive.partial" "$archive"
}
finish() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n "$step_pid" ]] && kill -KILL "$step_pid" 2>/dev/null
  pack
  echo
  echo "== gpu-check summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(grep -m1 '^commit' "$work/kiln/share/kiln/BUNDLE.txt" 2>/dev/null || echo 'commit unknown'))"
  cat "$summary"
  rm -rf "$work"
  exit "$rc"
}
trap finish EXIT
trap 'row check ABORTED "signal received after $SECONDS s; steps after this did not run"; exit 3' INT TERM

# limited LOG MAX CMD...: runs CMD under timeout -k with a limit of MAX seconds or
# what the budget leaves, output to $logs/LOG. Sets `rc` (124: SIGTERM at the limit
# ended it; 137: it ignored SIGTERM and SIGKILL ended it) and `limit`.
limited() {
  local log=$1 max=$2
  shift 2
  limit=$(($(left) - KILL_GRACE_S - 2))
  ((limit < max)) || limit=$max
  if ((limit < 1)); then
    rc=124
    echo "gpu-check: no time left for this command" >"$logs/$log"
    return
  fi
  local command=("$@")
  if [[ -n "$hang_step" && "$hang_step" == "$current_step" ]]; then
    command=(bash -c 'trap "" TERM; "$@"; echo "gpu-check: GPU_CHECK_HANG_STEP: hanging now, ignoring SIGTERM"; while :; do sleep 1; done' hang "$@")
  fi
  # In the background, so that the INT/TERM trap runs at once, not after the step.
  timeout -k "$KILL_GRACE_S" "$limit" "${command[@]}" >>"$logs/$log" 2>&1 &
  step_pid=$!
  wait "$step_pid"
  rc=$?
  step_pid=""
}
# why RC: a word for an exit status of `limited`.
why() {
  case $1 in
    0) echo "rc 0" ;;
    124) echo "TIMEOUT at ${limit} s (SIGTERM)" ;;
    137) echo "KILLED ${KILL_GRACE_S} s after its ${limit} s limit (ignored SIGTERM)" ;;
    *) echo "rc $1" ;;
  esac
}

# want STEP SECONDS: true when STEP is selected and at least SECONDS remain.
current_step=""
want() {
  [[ " $steps " == *" $1 "* ]] || return 1
  if (($(left) < $2)); then
    row "$1" skipped "needs ~$2 s, $(left) s left"
    return 1
  fi
  current_step=$1
  echo "== $1 ($(left) s left)"
}

tar -C "$work" -xJf "$bundle" || die "$bundle: cannot unpack"
kiln=$work/kiln/bin/kiln
echo "== bundle"
cat "$work/kiln/share/kiln/BUNDLE.txt"
cp "$work/kiln/share/kiln/BUNDLE.txt" "$logs/bundle.txt"

# ---- up front: the libraries kiln links, the driver, the card ----------------------
# The CUDA libraries the bundle's files need, by their ELF NEEDED entries: only
# those are looked for (cudart is linked statically).
mapfile -t needed < <(find "$work/kiln/bin" "$work/kiln/lib" -type f -print0 |
  xargs -0 readelf -d 2>/dev/null |
  sed -n 's/.*(NEEDED).*\[\(lib\(cudart\|cublas\|cublasLt\|cudnn\|nccl\)[^]]*\)\]/\1/p' | sort -u)
libdirs=()
add_dir() { [[ -d "$1" && " ${libdirs[*]} " != *" $1 "* ]] && libdirs+=("$1"); }
find_library() {
  local name=$1 found d
  found=$(ldconfig -p | awk -v n="$name" '$1 == n {print $NF; exit}')
  [[ -n "$found" ]] && { echo "$found"; return; }
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64; do
    [[ -e "$d/$name" ]] && { echo "$d/$name"; return; }
  done
  # pip's NVIDIA wheels (nvidia/cudnn/lib, ...), system-wide or in a home directory.
  find /usr/local/lib /usr/lib/python3* /opt /root /home -xdev -name "$name" -print -quit 2>/dev/null
}
for name in "${needed[@]}"; do
  found=$(find_library "$name")
  if [[ -n "$found" ]]; then
    add_dir "$(dirname "$(realpath "$found")")"
    echo "found $name: $found"
  else
    echo "not found on this machine: $name"
  fi
done
export LD_LIBRARY_PATH=$(IFS=:; echo "${libdirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export KILN_PLAIN_PROGRESS=1
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

unresolved=$(find "$work/kiln/bin" "$work/kiln/lib" -type f -name '*kiln*' -print0 |
  xargs -0 -n1 sh -c 'ldd "$0" 2>/dev/null | sed -n "s|^[[:space:]]*\([^ ]*\) => not found.*|\1 (needed by ${0##*/kiln/})|p"' |
  sort -u | tr '\n' ' ')
if [[ -n "$unresolved" ]]; then
  row libraries FAILED "unresolved: $unresolved"
  exit 1
fi
row libraries ok "every library of kiln resolves (${needed[*]:-no CUDA libraries needed})"

if ((dry)); then
  row driver dry "GPU_CHECK_DRY=1: no driver checked; steps run on the CPU"
else
  smi=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)
  driver=${smi##*, }
  if [[ ! "$driver" =~ ^([0-9]+)\. ]]; then
    row driver FAILED "nvidia-smi gave no driver version: $smi"
    exit 1
  fi
  if ((BASH_REMATCH[1] < MIN_DRIVER_MAJOR)); then
    row driver FAILED "$driver is older than the R$MIN_DRIVER_MAJOR branch that CUDA 13 needs"
    exit 1
  fi
  row driver ok "$driver (CUDA 13 needs R$MIN_DRIVER_MAJOR or newer)"
  row card info "${smi%, *}"
  nvidia-smi >"$logs/nvidia-smi.txt" 2>&1
fi
limited kiln-version.txt 30 "$kiln" version
cat "$logs/kiln-version.txt"
if ((rc != 0)); then
  row kiln FAILED "kiln version: $(why $rc): $(tail -1 "$logs/kiln-version.txt")"
  exit 1
fi
row kiln ok "$(head -1 "$logs/kiln-version.txt")"
pack

# ---- the steps ---------------------------------------------------------------------
device=cuda extra=()
if ((dry)); then
  device=cpu
  extra=(train.with.epochs=1 evaluate.with.gate.accuracy=0.5)
fi

if want tests 60; then
  passed=0 failed=0 skipped=0 failures=()
  # count LOG: adds gtest's totals from LOG; a non-zero rc with no FAILED test counts one.
  count() {
    local p s f
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$logs/$1" | tail -1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$logs/$1" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$logs/$1" | tail -1)
    passed=$((passed + ${p:-0})) skipped=$((skipped + ${s:-0})) failed=$((failed + ${f:-0}))
    if ((rc != 0)); then
      failures+=("$2($(why $rc))")
      ((${f:-0} > 0)) || failed=$((failed + 1))
      grep -E '^\[  FAILED  \] [A-Za-z]' "$logs/$1" | sort -u | head -20
    fi
    echo "$2: passed ${p:-0}, skipped ${s:-0}, failed ${f:-0}, $(why $rc)"
  }
  for program in "$work"/kiln/libexec/kiln/tests/*_tests; do
    name=$(basename "$program")
    if [[ "$name" == *cuda* ]]; then
      # One piece per test suite, so that one hang costs that suite alone.
      for suite in $("$program" --gtest_list_tests | sed -n 's/^\([^ #][^ ]*\)\.$/\1/p'); do
        limited "$name.$suite.log" 90 "$program" --gtest_filter="$suite.*"
        count "$name.$suite.log" "$name:$suite"
      done
    else
      limited "$name.log" 120 "$program" --gtest_filter="$GPU_TEST_FILTER"
      count "$name.log" "$name"
    fi
  done
  result=ok
  ((passed > 0 || dry)) || result=NONE  # a CUDA build has GPU tests: none ran is a failure too
  ((failed == 0)) || result=FAILED
  row tests "$result" "passed $passed, failed $failed, skipped $skipped ${failures[*]:-}"
  pack
fi

data_overrides=(
  "train_data.with.images=$data/train-images-idx3-ubyte.gz"
  "train_data.with.labels=$data/train-labels-idx1-ubyte.gz"
  "test_data.with.images=$data/t10k-images-idx3-ubyte.gz"
  "test_data.with.labels=$data/t10k-labels-idx1-ubyte.gz"
)

# run_pipeline NAME CONFIG LIMIT [OVERRIDES...]: one kiln run on the GPU, one row.
run_pipeline() {
  local name=$1 config=$2 max=$3
  shift 3
  local start=$SECONDS
  limited "$name.log" "$max" "$kiln" --registry "$work/registry-$name" run \
    "$work/kiln/share/kiln/configs/$config" "${data_overrides[@]}" \
    train.with.device=$device "${extra[@]}" "$@"
  local accuracy rate train_s result=ok
  accuracy=$(sed -n 's/.*evaluate: accuracy \([0-9.]*\).*/\1/p' "$logs/$name.log" | tail -1)
  rate=$(sed -n 's/.*step \([0-9]*\)\/\1 100%.* \([0-9.]*\) samples\/s.*/\2/p' "$logs/$name.log" | tail -1)
  train_s=$(sed -n 's/.*stage train (train): done in \([0-9.]*\) s.*/\1/p' "$logs/$name.log" | tail -1)
  tail -5 "$logs/$name.log"
  ((rc == 0)) || result=FAILED
  row "$name" "$result" "$(why $rc), accuracy ${accuracy:-?}, train ${train_s:-?} s, last window ${rate:-?} samples/s, total $((SECONDS - start)) s"
  pack
}

if want quickstart 60; then
  run_pipeline quickstart quickstart.yaml 180
fi

if want nccl 60; then
  # One node: Gloo (the job's coordination group) binds the loopback address, whatever
  # the machine's host name resolves to.
  KILN_GLOO_HOSTNAME=127.0.0.1 run_pipeline nccl-rank quickstart.yaml 180 --nproc 1
  grep -m1 'dist: rank 0 of 1 joined' "$logs/nccl-rank.log"
  gpus=0
  ((dry)) || gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
  if ((gpus >= 2)); then
    limited allreduce_nccl.log 90 "$work/kiln/libexec/kiln/benchmarks/allreduce_benchmark" \
      --device cuda --ranks "$gpus" --max-mb 256
    cat "$logs/allreduce_nccl.log"
    row nccl-bw "$( ((rc == 0)) && echo ok || echo FAILED)" \
      "$gpus ranks, $(why $rc), largest size: $(tail -1 "$logs/allreduce_nccl.log")"
  else
    row nccl-bw skipped "$gpus GPU(s) here: an all-reduce bandwidth needs two or more"
  fi
  pack
fi

if want compare 90; then
  compare_args=(--device "$device" --rounds 1)
  ((dry)) && compare_args+=(--models mlp)
  limited compare_torch.log 240 "${GPU_CHECK_PYTHON:-python3}" "$work/kiln/share/kiln/benchmarks/compare_torch.py" \
    --kiln "$kiln" --data "$data" --json "$logs/compare_torch.json" "${compare_args[@]}"
  tail -4 "$logs/compare_torch.log"
  if ((rc == 0)); then
    while read -r model dev _ _ torch_rate kiln_rate ratio; do
      [[ "$model" == mlp || "$model" == cnn ]] &&
        row vs-torch ok "$model on $dev: kiln $kiln_rate, torch $torch_rate samples/s, ratio $ratio"
    done <"$logs/compare_torch.log"
  else
    row vs-torch FAILED "$(why $rc), see compare_torch.log in logs.tar.xz"
  fi
  pack
fi

if want bench 45; then
  for program in "$work"/kiln/libexec/kiln/benchmarks/*_benchmark; do
    name=$(basename "$program")
    filter='.'
    [[ "$name" == *cuda* ]] || filter='[Cc][Uu][Dd][Aa]'
    [[ "$name" == allreduce_benchmark ]] && continue  # the nccl step runs it
    limited "$name.log" 90 "$program" --benchmark_filter="$filter" --benchmark_min_time=0.05 \
      --benchmark_counters_tabular=true
    lines=$(grep -c '^[A-Za-z].*/' "$logs/$name.log")
    ((lines > 0 || rc != 0)) || continue
    grep '^[A-Za-z].*/' "$logs/$name.log"
    row bench "$( ((rc == 0)) && echo ok || echo FAILED)" "$name: $lines results, $(why $rc)"
  done
  pack
fi

if want cnn 90; then
  run_pipeline cnn fmnist_cnn.yaml 300
fi
