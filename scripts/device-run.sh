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
size=${SIZE:-4G}
f=/dev/shm/hetpipe-bench/f32-$size.npy
timeout 300 env REPS=3 bench/stats.sh /dev/shm/hetpipe-bench "$size" >"$out/bench-stats.md" 2>&1
echo "bench rc=$?"; cat "$out/bench-stats.md"
for m in cpu gpu auto; do
  timeout 60 build/hetpipe stats --device $m -v --no-progress --json "$f" >"$out/stats-$m.json" 2>"$out/stats-$m.err"
  echo "stats $m rc=$?"; grep -v "lane cpu" "$out/stats-$m.err"
done
cmp <(grep -v seconds "$out/stats-cpu.json") <(grep -v seconds "$out/stats-gpu.json") && echo "cpu == gpu json"
cmp <(grep -v seconds "$out/stats-cpu.json") <(grep -v seconds "$out/stats-auto.json") && echo "cpu == auto json"
timeout 60 build/hetpipe stats --device gpu --no-progress --trace "$out/trace-gpu.json" "$f" >/dev/null
timeout 60 build/hetpipe stats --device auto --no-progress --trace "$out/trace-auto.json" "$f" >/dev/null

step "sweep (best of 3, GB/s)"
gbps() { local b=0 g; for _ in 1 2 3; do
  g=$(timeout 60 build/hetpipe "$@" -v --no-progress "$f" 2>&1 >/dev/null | sed -n 's/.*(\([0-9.]*\) GB\/s).*/\1/p' | head -1)
  b=$(python3 -c "print(max($b, ${g:-0}))"); done; echo "$b"; }
{
for io in 8 16 32; do for c in 4M 16M; do
  echo "bench read --io-threads $io --chunk-size $c: $(gbps bench read --io-threads $io --chunk-size $c)"
done; done
for c in 4M 16M; do for l in 2 4; do
  echo "stats gpu --chunk-size $c --gpu-lanes $l: $(gbps stats --device gpu --chunk-size $c --gpu-lanes $l)"
done; done
for t in 2 4 8 16; do
  echo "stats auto --cpu-threads $t: $(gbps stats --device auto --cpu-threads $t)"
done
} 2>&1 | tee "$out/sweep.txt"
step "done"
cd "$out" && tar czf logs.tgz *.log *.txt *.err *.json *.md 2>/dev/null && rm -f *.log *.err stats-*.json machine.txt info.txt
ls "$out"
