#!/usr/bin/env bash
# The whole check on the GPU machine (no network, no apt), in one go: build with CUDA for sm_90,
# run every test (the [gpu] ones included), then the benchmarks. Logs go to $OUT.
#   here, once:  ../shared/offline-prefix.sh .deps $(grep -v '^#' scripts/deps-offline.txt)
#   device run:  scripts/device-run.sh            (carry .deps)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/hetpipe-device}
mkdir -p "$out"
. .deps/env.sh
# gmp.h lives in the multiarch include folder, which env.sh does not name
export CPATH=$PWD/.deps/root/usr/include/x86_64-linux-gnu:$CPATH
step() { echo "== $(date -u +%T) $*" | tee -a "$out/steps.log"; }

step "machine"
{ nvidia-smi; nproc; lscpu | head -20; free -g; } >"$out/machine.txt" 2>&1
step "configure + build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DHETPIPE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  >"$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
cmake --build build -j16 >"$out/build.log" 2>&1 || { grep -E "error" -A3 "$out/build.log" | head -60; exit 1; }
build/hetpipe info >"$out/info.txt" 2>&1; cat "$out/info.txt"

step "tests"
timeout 300 ctest --test-dir build --output-on-failure -j8 >"$out/ctest.log" 2>&1
echo "ctest rc=$?"; grep -E "tests passed|Failed|Skipped|\*\*\*" "$out/ctest.log" | head -30
timeout 120 build/tests/test_gpu -r compact >"$out/test_gpu.log" 2>&1; echo "test_gpu rc=$?"
tail -3 "$out/test_gpu.log"

step "benchmarks"
size=${SIZE:-2G}
timeout 240 env REPS=3 bench/stats.sh /dev/shm/hetpipe-bench "$size" >"$out/bench-stats.md" 2>&1
echo "bench rc=$?"; cat "$out/bench-stats.md"
f=/dev/shm/hetpipe-bench/f32-$size.npy
for m in cpu gpu auto; do
  timeout 60 build/hetpipe stats --device $m -v --no-progress --json "$f" >"$out/stats-$m.json" 2>"$out/stats-$m.err"
  echo "stats $m rc=$?"; cat "$out/stats-$m.err"
done
cmp <(grep -v seconds "$out/stats-cpu.json") <(grep -v seconds "$out/stats-gpu.json") && echo "cpu == gpu json"
cmp <(grep -v seconds "$out/stats-cpu.json") <(grep -v seconds "$out/stats-auto.json") && echo "cpu == auto json"
timeout 60 build/hetpipe stats --device auto --no-progress --trace "$out/trace-auto.json" "$f" >/dev/null
step "done"
