#!/usr/bin/env bash
# Runs kiln's libFuzzer targets (tests/fuzz) for a fixed time each: builds the
# `fuzz` preset's fuzzers (clang, ASan + UBSan), starts each from its seeds plus
# what earlier runs here found (build-fuzz/corpus/<target>), and prints the
# executions per target. A crash, leak, timeout or out-of-memory input is copied to
# tests/fuzz/regressions/<target>/ (commit it with the fix: the normal suite
# replays it) and makes the script fail after the other targets ran.
# Usage: tools/fuzz.sh SECONDS_PER_TARGET [TARGET...]   (default: all)
#        FUZZ_JOBS=2 tools/fuzz.sh 600                   (two targets at a time)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: tools/fuzz.sh SECONDS_PER_TARGET [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
targets=("$@")
if ((${#targets[@]} == 0)); then
  for source in tests/fuzz/*_fuzz.cpp; do targets+=("$(basename "$source" _fuzz.cpp)"); done
fi
for target in "${targets[@]}"; do
  [[ -f "tests/fuzz/${target}_fuzz.cpp" ]] || {
    echo "fuzz: no target '$target' (tests/fuzz/${target}_fuzz.cpp)" >&2
    exit 2
  }
done

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

build="build-fuzz"
# allocator_may_return_null is left to each target (ASan's default: 0, an
# allocation ASan refuses aborts; the hdf5 target sets 1 in hdf5_fuzz.cpp).
export ASAN_OPTIONS="detect_leaks=1"
export LSAN_OPTIONS="suppressions=$here/tests/fuzz/lsan-suppressions.txt"  # libhdf5's own leaks
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# The targets' input files (tests/fuzz/fuzz_input.h); a crashed target leaves its own.
export TMPDIR="$here/$build/tmp"
mkdir -p "$TMPDIR"
# Stack traces with names need llvm-symbolizer (any version; Debian's llvm package).
for symbolizer in llvm-symbolizer-16 llvm-symbolizer llvm-symbolizer-14; do
  if command -v "$symbolizer" >/dev/null; then
    export ASAN_SYMBOLIZER_PATH UBSAN_SYMBOLIZER_PATH
    ASAN_SYMBOLIZER_PATH=$(command -v "$symbolizer")
    UBSAN_SYMBOLIZER_PATH=$ASAN_SYMBOLIZER_PATH
    break
  fi
done

# One target: corpus = seeds + earlier finds; findings land in $build/findings/<target>/.
fuzz_one() {
  local target=$1
  local corpus=$build/corpus/$target findings=$build/findings/$target log=$build/fuzz-logs/$target.log
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  rm -f "$findings"/*
  cp -r tests/fuzz/seeds/"$target"/. "$corpus"/
  # -timeout: one input may take 10 s (a busy 2-core machine is slow; kiln's readers
  # take milliseconds). -rss_limit_mb also bounds a single allocation.
  local rc=0
  "$build/bin/${target}_fuzzer" "$corpus" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1 || rc=$?
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  local found
  found=$(find "$findings" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) | head -n 1)
  if [[ -n "$found" || $rc -ne 0 ]]; then
    if [[ -n "$found" ]]; then
      mkdir -p tests/fuzz/regressions/"$target"
      cp "$found" tests/fuzz/regressions/"$target"/
      echo "fuzz: $target FAILED after ${runs:-?} executions: $(basename "$found") kept in" \
        "tests/fuzz/regressions/$target/ (log: $log; replay: $build/bin/${target}_fuzzer $found)"
    else
      echo "fuzz: $target FAILED (exit $rc) after ${runs:-?} executions (log: $log)"
    fi
    return 1
  fi
  echo "fuzz: $target: ${runs:-?} executions in $seconds s, no crash"
}

jobs=${FUZZ_JOBS:-1}
status=0
running=0
for target in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n || status=1
    running=$((running - 1))
  fi
  fuzz_one "$target" &
  running=$((running + 1))
done
while ((running > 0)); do
  wait -n || status=1
  running=$((running - 1))
done
exit "$status"
