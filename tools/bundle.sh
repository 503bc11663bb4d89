#!/usr/bin/env bash
# Makes a relocatable kiln (README.md, "A cluster with no package access"): one
# compressed archive holding the kiln CLI, libkiln, the standard plugins, the
# configs, the test and benchmark programs that tools/gpu-check.sh runs, and every
# shared library these need that is not part of the base system, all found through
# $ORIGIN rpaths. CUDA, cuDNN and NCCL are left out on purpose: they must match the
# driver of the machine that runs kiln, so they come from that machine
# (LD_LIBRARY_PATH or its ld.so cache).
#
#   tools/bundle.sh [BUILD_DIR] [OUTPUT]      defaults: build, BUILD_DIR/kiln-bundle.tar.xz
#
# The archive unpacks into one folder, kiln/ (bin/kiln, lib/, lib/kiln/plugins/,
# libexec/kiln/kiln-hdf5-reader, libexec/kiln/{tests,benchmarks}/, share/kiln/).
# Needs patchelf and xz (tools/install-deps.sh installs them). The target needs
# glibc >= the build machine's (2.36 for Debian 12) and a libstdc++ of GCC >= 12.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$here/build}")
output=$(realpath -m "${2:-$build/kiln-bundle.tar.xz}")
max_mib=30  # the GPU check carries it beside 29 MiB of data in a 64 MiB tree

die() { echo "bundle.sh: $*" >&2; exit 1; }
[[ -x "$build/bin/kiln" ]] || die "$build/bin/kiln: not built (run cmake --build first)"
command -v patchelf >/dev/null || die "patchelf: not installed (tools/install-deps.sh installs it)"
command -v xz >/dev/null || die "xz: not installed (tools/install-deps.sh installs it)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
root=$scratch/kiln
cmake --install "$build" --prefix "$root" --strip >"$scratch/install.log" ||
  die "cmake --install $build failed: $(tail -1 "$scratch/install.log")"

# The programs tools/gpu-check.sh runs: every test suite (and the micro benchmarks).
mkdir -p "$root/libexec/kiln/tests" "$root/libexec/kiln/benchmarks" "$root/share/kiln/benchmarks"
for program in "$build"/bin/*_tests; do
  [[ -x "$program" ]] && install -s "$program" "$root/libexec/kiln/tests/"
done
# (cmake --install put the micro benchmarks in libexec/kiln/benchmarks.)
install -m 0755 "$here/benchmarks/compare_torch.py" "$here/benchmarks/torch_peer.py" \
  "$root/share/kiln/benchmarks/"

# Libraries every Linux machine has (glibc, the GCC runtime) and those that must
# come from the target because they belong to its driver.
from_target='^(linux-vdso|ld-linux|libc|libm|libpthread|libdl|librt|libutil|libresolv|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*|libnccl|libnvrtc|libnvJitLink|libnvidia-[a-z]*|libcufft|libcurand|libcusparse|libcusolver)\.so'

elf_files() {
  find "$root/bin" "$root/lib" "$root/libexec" -type f -print0 |
    while IFS= read -r -d '' f; do
      [[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" == '177ELF' ]] && printf '%s\n' "$f"
    done
}

mapfile -t programs < <(elf_files)
declare -A bundled=()
missing=()
for f in "${programs[@]}"; do
  while read -r name arrow path _; do
    [[ "$arrow" == "=>" ]] || continue
    [[ "$name" =~ $from_target ]] && continue
    [[ "$name" == libkiln.so* ]] && continue
    if [[ "$path" == "not" ]]; then
      missing+=("$name (needed by ${f#"$root"/})")
      continue
    fi
    bundled[$name]=$path
  done < <(ldd "$f" 2>/dev/null || true)
done
((${#missing[@]} == 0)) || die "shared libraries not found: ${missing[*]}"

for name in "${!bundled[@]}"; do
  cp -L "${bundled[$name]}" "$root/lib/$name"
  chmod u+w "$root/lib/$name"
  patchelf --set-rpath '$ORIGIN' "$root/lib/$name"
done

# Every kiln file looks in the bundle's lib/ first, wherever the bundle lies.
for f in "${programs[@]}"; do
  case "${f#"$root"/}" in
    bin/*) rpath='$ORIGIN/../lib' ;;
    lib/kiln/plugins/*) rpath='$ORIGIN/../..' ;;
    lib/*) rpath='$ORIGIN' ;;
    libexec/kiln/*/*) rpath='$ORIGIN/../../../lib' ;;
    libexec/kiln/*) rpath='$ORIGIN/../../lib' ;;
    *) die "unexpected file in the bundle: $f" ;;
  esac
  patchelf --set-rpath "$rpath" "$f"
done

commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "kiln bundle"
  echo "version: $("$build/bin/kiln" version 2>/dev/null | head -1)"
  echo "commit: $commit$(git -C "$here" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -1)"
  echo "bundled libraries: $(printf '%s ' "${!bundled[@]}" | tr ' ' '\n' | sort | tr '\n' ' ')"
  echo "from the target machine: glibc, libstdc++/libgcc_s, the NVIDIA driver, CUDA runtime,"
  echo "  cuBLAS/cuBLASLt, cuDNN 9, NCCL 2 (set LD_LIBRARY_PATH; tools/gpu-check.sh finds them)"
} >"$root/share/kiln/BUNDLE.txt"

mkdir -p "$(dirname "$output")"
XZ_OPT="-6 -T0" tar -C "$scratch" -cJf "$output.partial" kiln
mv "$output.partial" "$output"
bytes=$(stat -c %s "$output")
echo "$output: $((bytes / 1024 / 1024)) MiB ($bytes bytes), ${#bundled[@]} bundled libraries, commit $commit"
((bytes < max_mib * 1024 * 1024)) || die "$output is larger than $max_mib MiB"
