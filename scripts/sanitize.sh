#!/usr/bin/env bash
# Builds the CPU path (no CUDA) with a sanitizer and runs the unit and command-line tests under it.
#   scripts/sanitize.sh address     ASan + UBSan, in build-asan
#   scripts/sanitize.sh thread      TSan, in build-tsan, with LLVM's OpenMP runtime and its Archer
#                                   tool (which tells TSan of OpenMP's own synchronisation)
# Environment: CXX (default clang++-14), BUILD (the build folder), JOBS (build jobs, default 2).
# Left out, as artifacts of the sanitizers themselves: the test_io cases whose child processes
# take signals (TSan defers a signal's handler; a SIGBUS child under either), and in the CLI tests
# what needs ulimit -v or a refused 1 TiB malloc (lib.sh: sanitized). Exit 1 if anything failed
# or a sanitizer reported anything.
set -uo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
case $kind in
  address) flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined" ;;
  thread) flags="-fsanitize=thread" ;;
  *) echo "usage: scripts/sanitize.sh address|thread" >&2; exit 2 ;;
esac
BUILD=$(realpath -m "${BUILD:-build-${kind:0:1}san}")
CXX=${CXX:-clang++-14} cmake -S . -B "$BUILD" -DHETPIPE_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null ||
  exit 1
cmake --build "$BUILD" -j "${JOBS:-2}" --target hetpipe_cli test_io test_host test_pipeline \
  >"$BUILD/sanitize-build.log" 2>&1 || { tail -30 "$BUILD/sanitize-build.log"; exit 1; }

logs=$BUILD/sanitize-logs
rm -rf "$logs" && mkdir -p "$logs"
# LLVM's OpenMP runtime leaves its threads' descriptors to the process's end: not ours.
printf 'leak:libomp.so\n' >"$logs/lsan.supp"
export LSAN_OPTIONS="suppressions=$logs/lsan.supp print_suppressions=0"
export ASAN_OPTIONS="allocator_may_return_null=1 detect_leaks=1 log_path=$logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1 log_path=$logs/ubsan"
export TSAN_OPTIONS="ignore_noninstrumented_modules=1 history_size=4 log_path=$logs/tsan"
# The CLI tests' Python with numpy and scipy (tests/cli/lib.sh), as CTest gives it.
[[ -x /usr/bin/python3 ]] && export HETPIPE_PYTHON=/usr/bin/python3
if [[ $kind == thread ]]; then
  archer=$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | tail -1)
  [[ -n $archer ]] || { echo "no libarcher.so (Debian's libomp-dev of the clang version)" >&2; exit 1; }
  export OMP_TOOL_LIBRARIES=$archer
fi
status=0
run() {
  echo "== $*"
  "$@" >"$logs/last.out" 2>&1 || { status=1; tail -25 "$logs/last.out"; }
}
run "$BUILD/tests/test_io" "~mapped_reads: the SIGBUS handler lets faults outside its windows*" \
  "~A second SIGINT removes the temporary files*" "~With a grace*" "~[.]"
run "$BUILD/tests/test_host"
run "$BUILD/tests/test_pipeline"
for t in cli checksum age image count csv; do
  run env HETPIPE="$BUILD/hetpipe" bash tests/cli/test_$t.sh
done
for t in image_reference image_large; do
  run env HETPIPE="$BUILD/hetpipe" /usr/bin/python3 tests/cli/test_$t.py
done
if compgen -G "$logs/[atu]*san.*" >/dev/null; then
  status=1
  echo "== sanitizer reports ($logs):"
  grep -h -E "^(SUMMARY|WARNING|ERROR)|runtime error" "$logs"/[atu]*san.* | sort | uniq -c | head -40
fi
[[ $status -eq 0 ]] && echo "sanitize $kind: everything passed, nothing reported"
exit $status
