#!/usr/bin/env bash
# Usage: bundle_test.sh SOURCE_DIR BUILD_DIR [BUNDLE]
# Makes the bundle (or takes BUNDLE, one tools/bundle.sh made of BUILD_DIR: ctest
# passes GpuCheck.MakeBundle's), unpacks it into an empty folder and runs a one-epoch quickstart
# with the bundled kiln. Fails when the run fails, when any shared object is loaded
# from the build tree (the dynamic loader's own log says where each came from), or
# when a plugin is not the bundle's.
set -euo pipefail
source_dir=$1
build_dir=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

bundle=${3:-$work/kiln.tar.xz}
[[ $# -ge 3 ]] || "$source_dir/tools/bundle.sh" "$build_dir" "$bundle"
[[ -f "$bundle" ]] || fail "$bundle: no such bundle"
mkdir "$work/unpacked"
tar -C "$work/unpacked" -xJf "$bundle"
kiln=$work/unpacked/kiln/bin/kiln
[[ -x "$kiln" ]] || fail "the archive has no kiln/bin/kiln"

# The run loads the CLI, libkiln, every plugin the pipeline uses and their libraries.
status=0
LD_DEBUG=libs LD_DEBUG_OUTPUT=$work/loader KILN_PLAIN_PROGRESS=1 \
  "$kiln" --registry "$work/registry" run "$work/unpacked/kiln/share/kiln/configs/quickstart.yaml" \
  train.with.epochs=1 evaluate.with.gate.accuracy=0.5 >"$work/run.log" 2>&1 || status=$?
cat "$work/run.log"
((status == 0)) || fail "kiln run from the bundle exited with $status"

loaded=$(cat "$work"/loader.* | sed -n 's/.*calling init: //p' | sort -u)
echo "loaded at start-up or by dlopen:"
echo "$loaded"
if grep -F "$build_dir" <<<"$loaded"; then fail "objects loaded from the build tree $build_dir"; fi
for plugin in idx_import train evaluate register; do
  grep -q "$work/unpacked/kiln/lib/kiln/plugins/kiln-$plugin.so" <<<"$loaded" ||
    fail "plugin $plugin was not loaded from the bundle"
done
grep -q "ended: FINISHED" "$work/run.log" || fail "the run did not finish"
echo "PASS: quickstart ran from the unpacked bundle ($(du -sh "$bundle" | cut -f1) archive)"
