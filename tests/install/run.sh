#!/usr/bin/env bash
# run.sh BUILD SOURCE: installs BUILD into a temporary prefix, builds tests/install (a project that
# finds hetpipe with find_package) against it, and runs what it built: the histogram sample (with
# its CUDA kernel where the package has GPU lanes and nvcc is here), checked against a plain
# count, and the installed command.
set -uo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
  fail "cmake --install: $(tail -5 "$tmp/install.log")"
# Nothing of the source tree is needed: the consumer sees the prefix alone (and the sample's file).
cmake -S "$src/tests/install" -B "$tmp/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DHETPIPE_SAMPLE_DIR="$src/samples/histogram" \
  >"$tmp/configure.log" 2>&1 || fail "configure: $(tail -20 "$tmp/configure.log")"
grep -rq -- "$src/pipeline" "$tmp/prefix/lib/cmake/hetpipe" &&
  fail "the installed package names the source tree"
cmake --build "$tmp/consumer" >"$tmp/build.log" 2>&1 || fail "build: $(tail -20 "$tmp/build.log")"
"$tmp/consumer/histogram" --check --chunk-size 64K "$src/samples/data/counts.u16" >"$tmp/out" 2>&1 ||
  fail "histogram --check: $(cat "$tmp/out")"
"$tmp/prefix/bin/hetpipe" --version >/dev/null || fail "installed hetpipe --version"
kernel="without its CUDA kernel (a package without GPU lanes, or no nvcc)"
grep -q "with the sample's CUDA kernel" "$tmp/configure.log" && kernel="with its CUDA kernel"
echo "installed package: find_package(hetpipe) built and ran the histogram sample $kernel"
