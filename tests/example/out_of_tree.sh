#!/usr/bin/env bash
# Usage: out_of_tree.sh <kiln build dir> <kiln source dir>
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
cmake -S "$source/plugins/example" -B "$work/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log" || { cat "$work/configure.log"; fail "configure"; }
cmake --build "$work/build" > "$work/build.log" || { cat "$work/build.log"; fail "build"; }
[[ -f "$work/build/kiln-class_balance.so" ]] || fail "kiln-class_balance.so was not built"

kiln=$work/prefix/bin/kiln
export KILN_PLUGIN_PATH=$work/build KILN_REGISTRY=$work/registry KILN_PLAIN_PROGRESS=1

# The installed kiln finds its own standard plugins next to itself and the
# example through KILN_PLUGIN_PATH.
"$kiln" plugins list > "$work/list.txt"
grep -q "^class_balance 1.0.0  $work/build/kiln-class_balance.so" "$work/list.txt" \
  || { cat "$work/list.txt"; fail "plugins list does not show the example"; }
grep -q "^idx_import " "$work/list.txt" || fail "the installed kiln lost its standard plugins"
"$kiln" plugins describe class_balance | grep -q "min_share .*default 0.0" \
  || fail "describe does not show the schema"

# tools/install-deps.sh installs the data set: without it this is a failure, not
# a pass that hides the untested half.
[[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]] \
  || fail "dataset-fashion-mnist is not installed (tools/install-deps.sh installs it); the plugin built and loaded, the run is untested"
cd "$work"
"$kiln" run "$source/plugins/example/pipeline.yaml" > run.txt 2> run.err || { cat run.err; fail "run"; }
grep -q "^balance .* ran .*10 classes, rarest share 0.1000" run.txt || { cat run.txt; fail "run output"; }
report=$(find registry/stages -name class_balance.json)
grep -q '"rarest_share": 0.1' "$report" || { cat "$report"; fail "report"; }

# Its gate: a minimum no class reaches fails the run with the gate exit code (4).
set +e
"$kiln" run "$source/plugins/example/pipeline.yaml" balance.with.min_share=0.2 > /dev/null 2> gate.err
code=$?
set -e
[[ $code -eq 4 ]] || { cat gate.err; fail "expected exit code 4, got $code"; }
grep -q "below min_share 0.2" gate.err || fail "gate message"
echo "PASS: example plugin built out of tree, listed, described, run, gated"
