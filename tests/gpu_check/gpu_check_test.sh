#!/usr/bin/env bash
# tools/gpu-check.sh without a GPU.
#   gpu_check_test.sh filter SOURCE_DIR BUILD_DIR KILN_CUDA
#   gpu_check_test.sh dry|hang|kill SOURCE_DIR BUNDLE
set -euo pipefail
case_name=$1 source_dir=$2
check=$source_dir/tools/gpu-check.sh
data=/usr/share/datasets/fashion-mnist
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
# The check's own scratch folder lands in here too, so that cleanup can find
# whatever a killed check left running.
export TMPDIR=$tmp
# Debian's interpreter has python3-torch and numpy; another python3 may come first on PATH.
export GPU_CHECK_PYTHON=/usr/bin/python3
cleanup() { pkill -KILL -f "$tmp" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# row NAME: the summary row of NAME, or nothing.
row() { grep -E "^$1 " "$tmp/out/summary.txt" || true; }

# The filter: every test whose name says CUDA or GPU, in any case, is selected from
# the programs that run with the filter (the *cuda* programs run whole), and the GPU
# instances of the gradient and loss tests (.../cuda0, cuda_*) are among them.
filter() {
  local build_dir=$1 cuda=$2
  if [[ "$cuda" != ON ]]; then
    echo "SKIP: a build without CUDA has no GPU test cases to select"
    exit 77
  fi
  local programs=()
  for p in "$build_dir"/bin/*_tests; do [[ "$(basename "$p")" == *cuda* ]] || programs+=("$p"); done
  ((${#programs[@]} > 5)) || fail "found only ${#programs[@]} test programs in $build_dir/bin"
  for p in "${programs[@]}"; do
    "$p" --gtest_list_tests |
      awk -v p="$(basename "$p")" '/^[^ ]/ {suite = $1} /^  / {print p " " suite $1}'
  done | sort >"$tmp/all"
  grep -i -E 'cuda|gpu' "$tmp/all" >"$tmp/gpu_named" || true
  "$check" --list-tests "${programs[@]}" | sort >"$tmp/selected"
  echo "$(wc -l <"$tmp/all") tests in ${#programs[@]} programs; $(wc -l <"$tmp/gpu_named") name CUDA or GPU; $(wc -l <"$tmp/selected") selected"
  if ! diff "$tmp/gpu_named" "$tmp/selected"; then
    fail "the filter and the CUDA/GPU test names differ (< named but not selected, > selected but not named)"
  fi
  # The gradient and loss tests are parameterized by device: every /cuda case of
  # them in the build must be selected (a new layer adds one), and there are some.
  local pattern='^nn_tests [A-Za-z]*/(LayerGradient|Conv2dGradient|SoftmaxCrossEntropy|MeanSquaredError)\.'
  local gradient_and_loss in_build
  gradient_and_loss=$(grep -E "$pattern" "$tmp/selected" | grep -c '/cuda' || true)
  in_build=$(grep -E "$pattern" "$tmp/all" | grep -c '/cuda' || true)
  grep -E "$pattern" "$tmp/selected"
  ((in_build > 0)) || fail "the build has no GPU gradient or loss cases"
  ((gradient_and_loss == in_build)) ||
    fail "$gradient_and_loss GPU gradient and loss cases selected, the build has $in_build"
  echo "PASS: the filter selects all $(wc -l <"$tmp/selected") GPU cases, the $in_build gradient and loss cases among them"
}

# The dry run: every step's real command runs on the CPU, each gives its row, two
# files come back, and the archive holds every step's log.
dry() {
  local bundle=$1 start=$SECONDS rc=0
  GPU_CHECK_DRY=1 "$check" "$bundle" "$data" "$tmp/out" >"$tmp/stdout" 2>&1 || rc=$?
  cat "$tmp/stdout"
  ((rc == 0)) || fail "the dry run exited with $rc"
  echo "dry run: $((SECONDS - start)) s"
  for name in libraries kiln tests quickstart nccl-rank vs-torch cnn; do
    [[ "$(row "$name")" =~ ^$name\ +ok\  ]] || fail "row $name is not ok: '$(row "$name")'"
  done
  [[ "$(row driver)" == *"no driver checked"* ]] || fail "no dry driver row"
  [[ "$(row nccl-bw)" == *skipped* ]] || fail "nccl-bw: '$(row nccl-bw)'"
  [[ -n "$(row bench)" ]] || fail "no bench row: no GPU benchmark command ran"
  ! grep -q 'needs ~' "$tmp/out/summary.txt" || fail "a step was skipped for lack of budget"
  grep -q '^nn_tests: passed [0-9]*, skipped [1-9]' "$tmp/stdout" || fail "nn_tests ran no GPU case"
  local files
  files=$(ls "$tmp/out")
  [[ "$files" == $'logs.tar.xz\nsummary.txt' ]] || fail "OUT_DIR holds: $files"
  tar -tJf "$tmp/out/logs.tar.xz" >"$tmp/archived"
  for log in kiln-version.txt nn_tests.log quickstart.log nccl-rank.log compare_torch.log cnn.log; do
    grep -qx "logs/$log" "$tmp/archived" || fail "logs.tar.xz lacks $log"
  done
  grep -q 'logs/ops_cuda_tests\..*\.log' "$tmp/archived" || fail "the CUDA test program did not run suite by suite"
  echo "PASS: dry run with every step, $(du -k "$tmp/out/logs.tar.xz" | cut -f1) KiB of logs"
}

# A step that ignores SIGTERM after its command ran is killed KILL_GRACE_S after its
# limit, and the check ends within its budget.
hang() {
  local bundle=$1 start=$SECONDS rc=0 budget=75
  GPU_CHECK_DRY=1 GPU_CHECK_STEPS=quickstart GPU_CHECK_HANG_STEP=quickstart \
    GPU_CHECK_BUDGET_S=$budget "$check" "$bundle" "$data" "$tmp/out" >"$tmp/stdout" 2>&1 || rc=$?
  local took=$((SECONDS - start))
  cat "$tmp/stdout"
  echo "the check took $took s with a budget of $budget s (exit $rc)"
  grep -q 'GPU_CHECK_HANG_STEP: hanging now' "$tmp/stdout" ||
    tar -xJOf "$tmp/out/logs.tar.xz" logs/quickstart.log | grep -q 'hanging now' ||
    fail "the step never reached its hang"
  [[ "$(row quickstart)" =~ ^quickstart\ +FAILED\ +KILLED\ 10\ s\ after\ its\ [0-9]+\ s\ limit ]] ||
    fail "quickstart row: '$(row quickstart)'"
  ((took <= budget + 5)) || fail "the check outlived its budget: $took s"
  echo "PASS: $(row quickstart)"
}

# SIGKILL of the whole process group halfway: the rows written so far and the
# archive of the finished steps are on disk.
kill_halfway() {
  local bundle=$1
  GPU_CHECK_DRY=1 GPU_CHECK_STEPS='tests quickstart cnn' \
    setsid "$check" "$bundle" "$data" "$tmp/out" >"$tmp/stdout" 2>&1 &
  local pid=$! waited=0
  # Halfway: the tests step is over and packed, the quickstart has begun.
  until grep -q '^== quickstart' "$tmp/stdout"; do
    sleep 1
    waited=$((waited + 1))
    ((waited < 400)) || fail "the check did not reach the quickstart in 400 s"
    kill -0 "$pid" 2>/dev/null || fail "the check ended early: $(cat "$tmp/stdout")"
  done
  sleep 3
  kill -KILL -- "-$pid"
  wait "$pid" 2>/dev/null || true
  cat "$tmp/stdout"
  ! grep -q '== gpu-check summary' "$tmp/stdout" || fail "the check was not killed before its end"
  for name in libraries driver kiln tests; do
    [[ -n "$(row "$name")" ]] || fail "the summary lost row $name: $(cat "$tmp/out/summary.txt")"
  done
  [[ -z "$(row cnn)" ]] || fail "the cnn step ran: the kill came too late to prove anything"
  tar -tJf "$tmp/out/logs.tar.xz" >"$tmp/archived" || fail "logs.tar.xz is unreadable after the kill"
  grep -qx 'logs/nn_tests.log' "$tmp/archived" || fail "the archive lacks the tests step's logs"
  echo "PASS: after SIGKILL the summary holds $(wc -l <"$tmp/out/summary.txt") rows and the archive $(wc -l <"$tmp/archived") files"
}

case $case_name in
  filter) filter "$3" "$4" ;;
  dry) dry "$3" ;;
  hang) hang "$3" ;;
  kill) kill_halfway "$3" ;;
  *) fail "unknown case $case_name" ;;
esac
