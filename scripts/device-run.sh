#!/usr/bin/env bash
# The whole check on the GPU machine (no network, no apt), in one go: build with CUDA for sm_90,
# run every test (the [gpu] ones included), then the benchmarks. Logs go to $OUT.
#   here, once:  ../shared/offline-prefix.sh .deps $(grep -v '^#' scripts/deps-offline.txt)
#   device run:  scripts/device-run.sh            (carry .deps)
# Sections: stats checksum encrypt image ceiling chunks fixed ab long shapes sweep disk touch count
# csv sanitize (default "stats checksum encrypt").
# A session has about 15 minutes of device time, a machine starts in about 30 s and goes back 30 s
# after a call: one full call fits, e.g. (2026-11-26, 238 s on the H200 machine)
#   DEADLINE=245 BUILD_TARGETS="hetpipe_cli test_gpu" SECTIONS="stats ceiling checksum image
#   encrypt" HD_COUNT=1000 BIG_COUNT=32 PNG_COUNT=64 IMAGE_TIMEOUT=120 IMAGE_REPS=1
#   CHECKSUM_REPS=2 ENCRYPT_REPS=1 scripts/device-run.sh
# (build 46-49 s, [gpu] tests 26 s). On 2026-11-26 (second session), after the device's first
# run (300 s with the chunks section), the auto-mode and chunk-size changes:
#   DEADLINE=420 BUILD_TARGETS="hetpipe_cli test_gpu test_host" SECTIONS="fixed ab stats checksum
#   long image" HD_COUNT=1000 BIG_COUNT=32 PNG_COUNT=96 IMAGE_TIMEOUT=110 IMAGE_REPS=1
#   CHECKSUM_REPS=2 COMMIT=<git rev-parse --short HEAD, here> scripts/device-run.sh
# (290 s there). Pass COMMIT: the device's copy of .git may keep an older HEAD, which the tables'
# "commit" would otherwise name. Since 2026-11-27 add "shapes" after "checksum" (about 20 s) and
# expect "long" to take about 40 s more (its 16 GiB stats job).
# 2026-11-27 (ninth session, H200): the long section's set -u bug lost run 1's logs (fixed: logs
# are packed on any exit); then 247 s for
#   DEADLINE=480 BUILD_TARGETS="hetpipe_cli test_gpu test_host" SECTIONS="sweep image stats
#   checksum" SWEEP_RESERVE=330 HD_COUNT=1000 BIG_COUNT=32 PNG_COUNT=96 IMAGE_TIMEOUT=150
#   IMAGE_REPS=1 CHECKSUM_REPS=2 HP_ARGS="--reads lane" COMMIT=... scripts/device-run.sh
# and 118 s for SKIP_TESTS=1 BUILD_TARGETS="hetpipe_cli test_io" SECTIONS="sweep checksum stats"
# SWEEP_THREADS="4 8 16" (build 61 s). A start and close cost about 35 s of device time each.
# The run planned since 2026-11-29 (no device since the ninth session): the targets of issues 3
# and 5 with the CPU kernels of sessions 10-25, and what new memory costs there (touch after image,
# which makes the 8192^2 set):
#   DEADLINE=540 BUILD_TARGETS="hetpipe_cli test_gpu test_host" SECTIONS="checksum image touch
#   disk count csv sanitize" HD_COUNT=1000 BIG_COUNT=32 PNG_COUNT=64 IMAGE_TIMEOUT=170 IMAGE_REPS=1
#   CHECKSUM_REPS=2 COMMIT=... scripts/device-run.sh
# (sanitize, last: the CSV and count kernels under compute-sanitizer, with what time is left.)
# SECTIONS run in the order given. DEADLINE=SECONDS caps the whole script: each section's timeout
# is cut to what is left, and a section that would start with under 20 s left is skipped, so the
# logs are always packed before the device command's own limit kills it.
set -uo pipefail
cd "$(dirname "$0")/.."
# Logs are written to a work folder and archived into $OUT (dest) after the tests and after each
# section: when the device tool's own limit kills the command (2026-11-29: a csv section that ran
# past the DEADLINE), what ran before is already there.
dest=${OUT:-/tmp/hetpipe-device}
out=/tmp/hetpipe-device-work
rm -rf "$out"
mkdir -p "$out" "$dest"
. .deps/env.sh
. bench/lib.sh  # random_file, small_files
# gmp.h lives in the multiarch include folder, which env.sh does not name
export CPATH=$PWD/.deps/root/usr/include/x86_64-linux-gnu:$CPATH
step() { echo "== $(date -u +%T) $*" | tee -a "$out/steps.log"; }
t0=$SECONDS
# Files come back 8 at most: everything in one archive, the tables beside it. After the tests,
# after each section and on any exit (a section's failure under set -u included).
pack() {
  (
    cd "$out" || exit
    shopt -s nullglob
    files=(*)
    ((${#files[@]})) || exit
    tar czf "$dest/logs.tgz.part" "${files[@]}" && mv "$dest/logs.tgz.part" "$dest/logs.tgz"
    tables=(*.md)
    ((${#tables[@]} == 0)) || cp -f "${tables[@]}" "$dest/"
  )
}
trap 'pack; ls "$dest"' EXIT
# g ARGS: hetpipe ARGS's in-run GB/s (from -v). medians FILE: lines "what case GB/s" -> a median
# per (what, case).
g() { timeout $(tmo 60) build/hetpipe "$@" -v --no-progress 2>&1 >/dev/null | sed -n 's/.*(\([0-9.]*\) GB\/s).*/\1/p' | head -1; }
medians() {
  python3 - "$1" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 3: d[(p[0], p[1])].append(float(p[2]))
for (what, c), v in sorted(d.items()):
    print(f"{what} {c}: median {statistics.median(v):.2f} GB/s of {len(v)} ({' '.join(f'{x:.1f}' for x in v)})")
PY
}
# tmo SECONDS: that timeout, or less if the deadline is nearer
tmo() { local l=$(( ${DEADLINE:-1000000} - (SECONDS - t0) )); (( l < $1 )) && echo $(( l > 5 ? l : 5 )) || echo "$1"; }

step "machine"
# THP's setting and a virtio balloon's features (bit 5: free page reporting, which makes
# io::huge_pages_pay say no) tell what new memory costs here (the touch section measures it).
{ nvidia-smi; nproc; lscpu | head -20; free -g; ls -l /dev/nvidia* /dev/dxg
  cat /sys/kernel/mm/transparent_hugepage/enabled /sys/bus/virtio/drivers/virtio_balloon/virtio*/features
} >"$out/machine.txt" 2>&1
if [[ -z ${SKIP_BUILD:-} ]]; then  # SKIP_BUILD=1: use build/ as it is (a dry run elsewhere)
step "configure + build"
build_t0=$SECONDS
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DHETPIPE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  >"$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
cmake --build build -j16 ${BUILD_TARGETS:+--target $BUILD_TARGETS} >"$out/build.log" 2>&1 || { grep -E "error" -A3 "$out/build.log" | head -60; exit 1; }
echo "build took $((SECONDS - build_t0)) s"
fi
build/hetpipe info >"$out/info.txt" 2>&1; cat "$out/info.txt"

if [[ -z ${SKIP_TESTS:-} ]]; then
step "tests"
# The [gpu] tests: what only this machine can run (CI runs the rest, the fake-device tests
# included). FULL_CTEST=1 runs the whole suite as well.
timeout $(tmo ${TEST_TIMEOUT:-300}) build/tests/test_gpu -r compact >"$out/test_gpu.log" 2>&1; echo "test_gpu rc=$?"
grep -E "failed|FAILED" "$out/test_gpu.log" | head -20; tail -3 "$out/test_gpu.log"
# BLAKE3's AVX-512 builds (sixteen and eight lanes) run only on this machine's CPU: the test
# vectors in every build, then one thread's rate in each.
if [[ -x build/tests/test_host ]]; then
  { timeout $(tmo 60) build/tests/test_host "[blake3]" 2>&1 | tail -2
    timeout $(tmo 60) build/tests/test_host "[.bench][blake3]" 2>&1 | grep "GB/s"
  } | tee "$out/blake3.txt"
  # The image filters' builds on this CPU (Intel AVX-512): blur's float estimates with their exact
  # fallback must give the integer loops' bytes here too, then one thread's rate in each build.
  { timeout $(tmo 120) build/tests/test_host "[image]" 2>&1 | tail -2
    timeout $(tmo 120) build/tests/test_host "image filter throughput by row-kernel build" 2>&1 |
      grep "MPix/s"
  } | tee "$out/image-kernels.txt"
fi
if [[ -n ${FULL_CTEST:-} ]]; then
  timeout $(tmo 300) ctest --test-dir build --output-on-failure -j8 >"$out/ctest.log" 2>&1
  echo "ctest rc=$?"; grep -E "tests passed|Failed|\*\*\*" "$out/ctest.log" | head -30
fi
fi

pack
sections=${SECTIONS:-stats checksum encrypt}
mkdir -p /dev/shm/hetpipe-bench
size=${SIZE:-4G}
f=/dev/shm/hetpipe-bench/f32-$size.npy
# The f32 file bench/stats.sh makes (same seed, same bytes), made here when stats did not run.
f32_file() {
  [[ -f $f ]] || build/hetpipe gen --dtype f32 --rows $(( $(numfmt --from=iec "$size") / 4 )) \
    --npy --seed 1 -o "$f"
  cat "$f" >/dev/null
}

sec_stats() {
  step "stats benchmark"
  timeout $(tmo 300) env REPS=3 bench/stats.sh /dev/shm/hetpipe-bench "$size" >"$out/bench-stats.md" 2>&1
  echo "bench rc=$?"; cat "$out/bench-stats.md"
  for m in cpu gpu auto; do
    timeout $(tmo 60) build/hetpipe stats --device $m -v --no-progress --json "$f" >"$out/stats-$m.json" 2>"$out/stats-$m.err"
    echo "stats $m rc=$?"; grep -v "lane cpu" "$out/stats-$m.err"
  done
  cmp <(grep -v seconds "$out/stats-cpu.json") <(grep -v seconds "$out/stats-gpu.json") && echo "cpu == gpu json"
  cmp <(grep -v seconds "$out/stats-cpu.json") <(grep -v seconds "$out/stats-auto.json") && echo "cpu == auto json"
  timeout $(tmo 60) build/hetpipe stats --device gpu --no-progress --trace "$out/trace-gpu.json" "$f" >/dev/null
  # The machine's own page-cache read rate, outside hetpipe: 16 dd processes on disjoint ranges.
  python3 - "$f" <<'PY' | tee -a "$out/bench-stats.md"
import os, subprocess, sys, time
f = sys.argv[1]; n = os.path.getsize(f); k = 16; part = n // k // (1 << 20)
t = time.perf_counter()
ps = [subprocess.Popen(["dd", f"if={f}", "of=/dev/null", "bs=1M", f"skip={i * part}", f"count={part}"],
                       stderr=subprocess.DEVNULL) for i in range(k)]
for p in ps: p.wait()
dt = time.perf_counter() - t
print(f"| 16 x dd bs=1M (page cache to user memory, outside hetpipe) | {k * part * (1 << 20) / dt / 1e9:.2f} | |")
PY
}

sec_ceiling() {
  step "read-only ceiling: lanes and allocators"
  f32_file
  {
  for args in "" "--cpu-threads 1" "--device cpu" "--device cpu --cpu-threads 1"; do
    for _ in 1 2; do
      echo "bench read $args: $(timeout $(tmo 60) build/hetpipe bench read $args -v --no-progress "$f" 2>&1 >/dev/null | grep -E "GB/s|reader" | tr -s ' ' | tr '\n' ' ')"
    done
  done
  # Outside hetpipe: 16 threads pread into a pool of 44 slots, by allocator.
  local nv; nv=$(dirname "$(command -v nvcc)")/..
  if g++ -O2 -pthread -DWITH_CUDA -I"$nv/include" bench/io_ceiling.cpp -L"$nv/lib64" -lcudart -o /tmp/io_ceiling; then
    for a in anon hostalloc register; do /tmp/io_ceiling read "$f" 16 4M 44 $a; /tmp/io_ceiling read "$f" 16 1M 44 $a; done
  fi
  } 2>&1 | tee "$out/ceiling.txt"
}

sec_checksum() {
  step "checksum benchmark"
  timeout $(tmo 330) env REPS=${CHECKSUM_REPS:-2} bench/checksum.sh /dev/shm/hetpipe-bench "$size" 20000 >"$out/bench-checksum.md" 2>&1
  echo "checksum bench rc=$?"; cat "$out/bench-checksum.md"
  big=/dev/shm/hetpipe-bench/random-$size.bin
  for a in blake3 crc32c; do
    timeout $(tmo 60) build/hetpipe checksum -a $a --device auto -v --no-progress "$big" 2>&1 | grep -v "lane cpu" | tee -a "$out/checksum-v.txt"
  done
  timeout $(tmo 60) build/hetpipe checksum -r --device gpu -v --no-progress /dev/shm/hetpipe-bench/small-20000 2>&1 >/dev/null | tee -a "$out/checksum-v.txt"
  # Many small files: is the reader's one loop thread the limit here ("reader cpu" near 100%)?
  for m in cpu gpu auto; do
    timeout $(tmo 60) build/hetpipe checksum -r -a crc32c --device $m -v --no-progress /dev/shm/hetpipe-bench/small-20000 2>&1 >/dev/null | grep -E "GB/s|reader" | tee -a "$out/checksum-v.txt"
  done
  # BLAKE3 over the small files, in the job and whole process: 152 ms whole process in cpu mode
  # against CRC32C's 84 on 2026-11-27, about 45 ms more than 16 lanes' hashing explains.
  for m in cpu auto; do
    echo "blake3 small files, $m, whole process: $(python3 bench/best_time.py 3 build/hetpipe checksum -r --device $m --no-progress /dev/shm/hetpipe-bench/small-20000) s" | tee -a "$out/checksum-v.txt"
    timeout $(tmo 60) build/hetpipe checksum -r --device $m -v --no-progress /dev/shm/hetpipe-bench/small-20000 2>&1 >/dev/null | grep -E "GB/s|reader|busy" | tee -a "$out/checksum-v.txt"
  done
  timeout $(tmo 60) build/hetpipe bench read -v --no-progress /dev/shm/hetpipe-bench/small-20000/* 2>&1 | grep -E "GB/s|reader" | tee -a "$out/checksum-v.txt"
  b3sum /dev/shm/hetpipe-bench/small-20000/f00012* | sort >"$out/b3.ref"
  build/hetpipe checksum --device gpu /dev/shm/hetpipe-bench/small-20000/f00012* | sort | cmp - "$out/b3.ref" && echo "small files: gpu == b3sum"
  cmp <(b3sum "$big") <(build/hetpipe checksum --device gpu "$big") && echo "big file: gpu == b3sum"
  timeout $(tmo 60) build/hetpipe checksum --device auto --no-progress --trace "$out/trace-checksum.json" "$big" >/dev/null
}

sec_count() {
  step "count benchmark"
  timeout $(tmo 240) env REPS=${COUNT_REPS:-2} bench/count.sh /dev/shm/hetpipe-bench "$size" 20000 >"$out/bench-count.md" 2>&1
  echo "count bench rc=$?"; cat "$out/bench-count.md"
  local text=/dev/shm/hetpipe-bench/text-$size.txt
  for m in gpu auto; do
    timeout $(tmo 60) build/hetpipe count --device $m -v --no-progress "$text" 2>&1 | grep -v "lane cpu" | tee -a "$out/count-v.txt"
  done
  cmp <(LC_ALL=C wc "$text") <(build/hetpipe count --device gpu "$text") && echo "count: gpu == wc"
}

sec_csv() {
  step "csv benchmark"
  timeout $(tmo 240) env REPS=${CSV_REPS:-2} bench/csv.sh /dev/shm/hetpipe-bench "${CSV_COPIES:-16}" >"$out/bench-csv.md" 2>&1
  echo "csv bench rc=$?"; cat "$out/bench-csv.md"
  local big=/dev/shm/hetpipe-bench/records-${CSV_COPIES:-16}.csv
  for m in gpu auto; do
    timeout $(tmo 60) build/hetpipe stats --device $m -v --no-progress "$big" 2>&1 | grep -v "lane cpu" | tee -a "$out/csv-v.txt"
  done
  cmp <(build/hetpipe stats --json --device cpu "$big") <(build/hetpipe stats --json --device gpu "$big") && echo "csv: gpu == cpu"
}

# The kernels that have never run on a device, under compute-sanitizer: memcheck (out-of-bounds and
# misaligned accesses, failed API calls) and initcheck (reads of device memory never written).
sec_sanitize() {
  step "compute-sanitizer"
  local cs; cs=$(command -v compute-sanitizer || echo "$(dirname "$(command -v nvcc)")/compute-sanitizer")
  local tool
  for tool in memcheck initcheck; do
    timeout $(tmo ${SANITIZE_TIMEOUT:-90}) "$cs" --tool $tool --error-exitcode 3 \
      build/tests/test_gpu "${SANITIZE_TESTS:-[kernels][csv],[kernels][count]}" >"$out/sanitize-$tool.log" 2>&1
    echo "compute-sanitizer $tool rc=$?"; grep -E "ERROR SUMMARY|test cases" "$out/sanitize-$tool.log"
  done
}

sec_encrypt() {
  step "encrypt benchmark"
  timeout $(tmo 300) env REPS=${ENCRYPT_REPS:-2} bench/encrypt.sh /dev/shm/hetpipe-bench "$size" >"$out/bench-encrypt.md" 2>&1
  echo "encrypt bench rc=$?"; cat "$out/bench-encrypt.md"
}

sec_image() {
  step "image benchmark"
  # 2000 HD images (12 GB) and BIG_COUNT 8192^2 (64 MiB each) in /dev/shm next to their outputs,
  # then PNG_COUNT HD PNGs (the GPU lanes' codec teams); the PNG set goes last, so a timeout
  # loses only it.
  timeout $(tmo ${IMAGE_TIMEOUT:-400}) env REPS=${IMAGE_REPS:-1} BIG_COUNT=${BIG_COUNT:-100} \
    PNG_COUNT=${PNG_COUNT:-200} \
    bench/image.sh /dev/shm/hetpipe-bench >"$out/bench-image.md" 2>&1
  echo "image bench rc=$?"; cat "$out/bench-image.md"
  # When auto mode's GPU lanes joined each set's job, and what they took.
  local set
  for set in hd big png; do
    [[ -d /dev/shm/hetpipe-bench/images-$set ]] || continue
    rm -rf /dev/shm/hetpipe-bench/auto-v
    # the 8192^2 set's trace: what a GPU lane's host work (collect, write) and the CPU lanes'
    # mapped images cost per image
    local tr=(); [[ $set == big ]] && tr=(--trace "$out/trace-image-big.json")
    timeout $(tmo 60) build/hetpipe image -r --ops gray,blur:sigma=2,sobel --device auto -v --no-progress \
      "${tr[@]}" -o /dev/shm/hetpipe-bench/auto-v /dev/shm/hetpipe-bench/images-$set 2>&1 |
      grep -E "GB/s|GPU lanes|lane |images written" | sed "s/^/$set: /" | tee -a "$out/image-auto-v.txt"
  done
  # Auto mode on the 8192^2 set with N threads per image (CPU lanes = threads / N): CPU lanes that
  # finish images sooner hold fewer when the GPU lanes join (on 2026-11-27 16 one-thread lanes
  # took 29 of 32 images, 0.53 s each, and the GPU lanes joined at 0.58 s with 3 left). Whole
  # process, 2 interleaved rounds; bench-image.md has OpenCV's time on the same set.
  if [[ -d /dev/shm/hetpipe-bench/images-big ]]; then
    local round n start_ns
    for round in 1 2; do
      (( ${DEADLINE:-1000000} - (SECONDS - t0) < ${TEAM_RESERVE:-90} )) &&
        { echo "image team: round $round skipped (deadline)" >&2; break; }
      for n in 1 2 4 8; do  # at most the 8 threads kept beside the GPU lanes on 16
        rm -rf /dev/shm/hetpipe-bench/team
        start_ns=$(date +%s%N)
        timeout $(tmo 20) build/hetpipe image -r --ops gray,blur:sigma=2,sobel --device auto \
          --threads-per-image $n --no-progress -o /dev/shm/hetpipe-bench/team \
          /dev/shm/hetpipe-bench/images-big >/dev/null 2>&1
        echo "big auto --threads-per-image $n round $round: rc $? $((($(date +%s%N) - start_ns) / 1000000)) ms" |
          tee -a "$out/image-team.txt"
      done
      # --cpu-threads given keeps every CPU lane on once the GPU lanes join (by default half stop,
      # for the reads that feed the GPU lanes; an 8192^2 image is CPU work, not reads).
      rm -rf /dev/shm/hetpipe-bench/team
      start_ns=$(date +%s%N)
      timeout $(tmo 20) build/hetpipe image -r --ops gray,blur:sigma=2,sobel --device auto \
        --cpu-threads "$(nproc)" --no-progress -o /dev/shm/hetpipe-bench/team \
        /dev/shm/hetpipe-bench/images-big >/dev/null 2>&1
      echo "big auto --cpu-threads $(nproc) round $round: rc $? $((($(date +%s%N) - start_ns) / 1000000)) ms" |
        tee -a "$out/image-team.txt"
    done
    rm -rf /dev/shm/hetpipe-bench/team
  fi
  # The 8192^2 set in gpu mode, traced: 58 ms an image with 2 lanes and 54 with 4 on 2026-11-27
  # (H200), while each copy took 1.3 ms. Set-up (pool, lanes), reads, kernel spans (with the
  # lanes' pinned output buffers growing) and collect/write: which one bounds it?
  if [[ -d /dev/shm/hetpipe-bench/images-big ]]; then
    rm -rf /dev/shm/hetpipe-bench/gpu-v
    timeout $(tmo 60) build/hetpipe image -r --ops gray,blur:sigma=2,sobel --device gpu -v --no-progress \
      --trace "$out/trace-image-big-gpu.json" -o /dev/shm/hetpipe-bench/gpu-v \
      /dev/shm/hetpipe-bench/images-big 2>&1 | sed "s/^/big gpu: /" | tee -a "$out/image-auto-v.txt"
    rm -rf /dev/shm/hetpipe-bench/gpu-v
    # A CPU lane took 0.53 s an 8192^2 image with 16 lanes busy here, 0.14 s on the 2-core Zen 5
    # box: is one thread that slow here, or do 16 lanes slow each other (memory, clocks)? The lane
    # busy times of one image on one lane, then of 16 images on 16 lanes.
    local one=(/dev/shm/hetpipe-bench/images-big/*.pgm)
    for n in 1 16; do
      rm -rf /dev/shm/hetpipe-bench/cpu-v
      timeout $(tmo 60) build/hetpipe image --ops gray,blur:sigma=2,sobel --device cpu --cpu-threads $n \
        -v --no-progress -o /dev/shm/hetpipe-bench/cpu-v "${one[@]:0:$n}" 2>&1 |
        grep -E "lane |host|map" | sed "s/^/big cpu, $n lanes: /" | tee -a "$out/image-auto-v.txt"
    done
    rm -rf /dev/shm/hetpipe-bench/cpu-v
  fi
  rm -rf /dev/shm/hetpipe-bench/auto-v
}

sec_chunks() {
  # What this session (2026-11-26) left open: GPU jobs' chunk size (1 MiB reads ran 70-84 GB/s
  # into 44 slots, 4 MiB ones 44-50: bench/io_ceiling), the CPU lanes beside GPU lanes in auto
  # mode, and how idle CPU lanes slow bench read (16 lanes 50 GB/s, one 66).
  step "sweep: chunk size, CPU lanes (steady-state GB/s from -v, best of 3)"
  f32_file
  v() { local b=0 g; for _ in 1 2 3; do
    g=$(timeout $(tmo 60) build/hetpipe "$@" -v --no-progress 2>&1 >/dev/null | sed -n 's/.*(\([0-9.]*\) GB\/s).*/\1/p' | head -1)
    b=$(python3 -c "print(max($b, ${g:-0}))"); done; echo "$b"; }
  {
  for n in 1 2 4 8 16; do
    echo "bench read --cpu-threads $n: $(v bench read --cpu-threads $n "$f")"
  done
  for c in 1M 2M 4M; do
    echo "stats --device gpu --chunk-size $c: $(v stats --device gpu --chunk-size $c "$f")"
    echo "checksum -a crc32c --device gpu --chunk-size $c: $(v checksum -a crc32c --device gpu --chunk-size $c "$f")"
  done
  # CPU lanes copy every byte out of the page cache, then read it again: smaller slots may keep
  # it in cache between the two (defaults: 1 MiB for CPU jobs, 4 MiB beside a GPU).
  for c in 256K 1M 4M; do
    echo "checksum --device cpu --chunk-size $c: $(v checksum --device cpu --chunk-size $c "$f")"
    echo "stats --device cpu --chunk-size $c: $(v stats --device cpu --chunk-size $c "$f")"
    echo "checksum --device auto --chunk-size $c: $(v checksum --device auto --chunk-size $c "$f")"
  done
  for n in 1 2 4 8; do
    echo "stats --device auto --cpu-threads $n: $(v stats --device auto --cpu-threads $n "$f")"
    echo "checksum --device auto --cpu-threads $n: $(v checksum --device auto --cpu-threads $n "$f")"
  done
  } 2>&1 | tee "$out/chunks.txt"
}

sec_ab() {
  # cpu mode's lanes and chunk size, interleaved rounds, in-run GB/s from -v: medians. (The GPU
  # chunk's 2M against 4M was settled on 2026-11-26: bench/RESULTS.md.)
  step "A/B: cpu mode's lanes 8 vs 12 vs 16, its chunk 1M..8M, --reads map vs lane vs pool (in-run GB/s, medians of interleaved rounds)"
  f32_file
  local big=/dev/shm/hetpipe-bench/random-$size.bin small=/dev/shm/hetpipe-bench/small-20000
  # The checksum benchmark's files (bench/lib.sh), made here when it has not run yet.
  hp=build/hetpipe random_file "$big" "$(numfmt --from=iec "$size")"
  hp=build/hetpipe small_files "$small" 20000 "$big"
  {
  for r in $(seq ${AB_ROUNDS:-3}); do
    # a round takes about 15 s: leave the sections after this one their time
    (( ${DEADLINE:-1000000} - (SECONDS - t0) < 150 )) && { echo "ab: round $r skipped (deadline)" >&2; break; }
    # auto's 8 CPU lanes (GPU lanes not started) beat cpu mode's 16 on every 4 GiB reduction on
    # 2026-11-26 (stats 32.2 against 24.5 GB/s); chunk sizes differed too (2M against 1M).
    for n in 8 12 16; do
      echo "stats-cpu-lanes $n $(g stats --device cpu --cpu-threads $n "$f")"
      echo "crc32c-cpu-lanes $n $(g checksum -a crc32c --device cpu --cpu-threads $n "$big")"
      echo "blake3-cpu-lanes $n $(g checksum -a blake3 --device cpu --cpu-threads $n "$big")"
    done
    # auto mode's CPU lanes: all 16 until GPU lanes run (the default since 2026-11-27, seventh
    # session) against 8 throughout (--cpu-threads 8: the lanes auto mode had before)
    for n in 8 16; do
      x=""; [[ $n == 8 ]] && x="--cpu-threads 8"
      echo "stats-auto-lanes $n $(g stats --device auto $x "$f")"
      echo "blake3-auto-lanes $n $(g checksum -a blake3 --device auto $x "$big")"
      echo "crc32c-auto-lanes $n $(g checksum -a crc32c --device auto $x "$big")"
    done
    # cpu mode's chunk with mapped reads (its default: 4M; the 2-core box's choice)
    for c in 1M 2M 4M 8M; do
      echo "stats-cpu-chunk $c $(g stats --device cpu --chunk-size $c "$f")"
      echo "blake3-cpu-chunk $c $(g checksum -a blake3 --device cpu --chunk-size $c "$big")"
      echo "crc32c-cpu-chunk $c $(g checksum -a crc32c --device cpu --chunk-size $c "$big")"
    done
    # CPU lanes mapping their chunks (the default since 2026-11-27, seventh session), reading
    # them into their slots (lane), and libuv's threads reading every chunk (pool), in cpu mode
    # and in auto mode (whose GPU lanes do not start for these 4 GiB jobs: the BLAKE3-against-
    # b3sum target is measured there). Each at its own default chunk size.
    for m in cpu auto; do
      for r in map lane pool; do
        echo "stats-$m-reads $r $(g stats --device $m --reads $r "$f")"
        echo "blake3-$m-reads $r $(g checksum -a blake3 --device $m --reads $r "$big")"
        echo "crc32c-$m-reads $r $(g checksum -a crc32c --device $m --reads $r "$big")"
      done
    done
  done >"$out/ab-raw.txt"
  medians "$out/ab-raw.txt"
  } 2>&1 | tee "$out/ab.txt"
}

sec_sweep() {
  # --reads map against lane by CPU lane count, cpu mode, 4 GiB hot, in-run GB/s from -v, medians
  # of interleaved rounds. On 2026-11-27 (ninth session) this machine's 16 lanes ran CRC32C at
  # 48.5 GB/s reading (lane) against 29.2 mapping (map), while the 2-core Zen 5 box's two lanes
  # ran 22.5 against 29.2: is it the lane count (page-table contention) or the CPU?
  step "sweep: --reads map vs lane by --cpu-threads (in-run GB/s, medians of interleaved rounds)"
  f32_file
  local big=/dev/shm/hetpipe-bench/random-$size.bin
  hp=build/hetpipe random_file "$big" "$(numfmt --from=iec "$size")"
  {
  for r in $(seq ${SWEEP_ROUNDS:-3}); do
    (( ${DEADLINE:-1000000} - (SECONDS - t0) < ${SWEEP_RESERVE:-150} )) && { echo "sweep: round $r skipped (deadline)" >&2; break; }
    for n in ${SWEEP_THREADS:-2 4 8 16}; do
      for m in map lane; do
        echo "crc32c-t$n $m $(g checksum -a crc32c --device cpu --cpu-threads $n --reads $m "$big")"
        echo "stats-t$n $m $(g stats --device cpu --cpu-threads $n --reads $m "$f")"
        echo "blake3-t$n $m $(g checksum -a blake3 --device cpu --cpu-threads $n --reads $m "$big")"
      done
    done
    # BLAKE3's builds in the 16-lane job: 16 lanes hash at 2.98 GB/s each against 3.99 for one
    # thread in cache (avx512-16). Do 512-bit registers cost the 16 cores their clock here?
    for b in avx512-16 avx512 avx2; do
      echo "blake3-t16-build $b $(HETPIPE_BLAKE3=$b g checksum -a blake3 --device cpu --cpu-threads 16 "$big")"
    done
  done >"$out/sweep-raw.txt"
  medians "$out/sweep-raw.txt"
  } 2>&1 | tee "$out/sweep.txt"
}

sec_touch() {
  # What new memory costs here, on 1 and on all cores at once (bench/touch.cpp): anonymous pages
  # (a fresh output buffer), with and without MADV_HUGEPAGE, memory touched before, and new
  # tmpfs pages (an output file). The 2-core box: 2.7-2.8 GB/s a thread for anonymous pages, 2.1
  # for a new /dev/shm file, 40 for a memset of touched memory. A CPU lane took 0.5 s per 8192^2
  # image here with 16 lanes busy (each output then new memory) against 0.1 s there: do 16
  # threads that fault at once slow each other here?
  step "touch: new memory, 1 and $(nproc) threads"
  if g++ -O2 -std=c++20 -pthread bench/touch.cpp -o /tmp/touch; then
    timeout $(tmo 60) /tmp/touch 256 /dev/shm 2>&1 | tee "$out/touch.txt"
  fi
  # Whole jobs with and without huge pages (HETPIPE_HUGE_PAGES; the default follows
  # io::huge_pages_pay), 3 interleaved rounds, whole process: the 8192^2 set (after the image
  # section made it) on CPU lanes, whose first outputs are new memory.
  local big=/dev/shm/hetpipe-bench/images-big round hp start_ns
  [[ -d $big ]] || return 0
  for round in 1 2 3; do
    for hp in 0 1; do
      rm -rf /dev/shm/hetpipe-bench/huge
      start_ns=$(date +%s%N)
      HETPIPE_HUGE_PAGES=$hp timeout $(tmo 30) build/hetpipe image -r --ops gray,blur:sigma=2,sobel \
        --device cpu --no-progress -o /dev/shm/hetpipe-bench/huge "$big" >/dev/null 2>&1
      echo "big cpu HETPIPE_HUGE_PAGES=$hp round $round: rc $? $((($(date +%s%N) - start_ns) / 1000000)) ms" |
        tee -a "$out/touch.txt"
    done
  done
  rm -rf /dev/shm/hetpipe-bench/huge
}

sec_disk() {
  # The 4 GiB jobs on files in a disk filesystem's page cache (hot), next to /dev/shm's. tmpfs
  # holds 4 KiB pages, which a mapping lane (--reads map) populates one by one (about 0.2-0.35 us
  # each); ext4 and xfs may hold files written in large pieces in large folios, mapped 2 MiB at a
  # time (2026-11-27, 2-core box: `stats` 0.53 of the ceiling on a copied file, 0.90 on one that
  # gen wrote). bench/page_cache.cpp says which this machine does. Reductions only: a transform
  # fsyncs its output, which a disk makes slow.
  step "disk: 4 GiB jobs on a disk filesystem (DISK_DIR), hot, in-run medians"
  local dir=${DISK_DIR:-/var/tmp/hetpipe-bench}
  mkdir -p "$dir" || return
  local big=$dir/random-$size.bin f32=$dir/f32-$size.npy
  {
  uname -r; df -T "$dir" | tail -1
  hp=build/hetpipe random_file "$big" "$(numfmt --from=iec "$size")"
  [[ -f $f32 ]] || build/hetpipe gen --dtype f32 --rows $(( $(numfmt --from=iec "$size") / 4 )) \
    --npy --seed 1 -o "$f32"
  cat "$big" "$f32" >/dev/null
  if g++ -O2 -std=c++20 bench/page_cache.cpp -o /tmp/page_cache; then
    /tmp/page_cache "$big" "$f32" /dev/shm/hetpipe-bench/random-$size.bin "$f"
  fi
  for r in $(seq ${DISK_ROUNDS:-3}); do
    (( ${DEADLINE:-1000000} - (SECONDS - t0) < ${DISK_RESERVE:-60} )) && { echo "disk: round $r skipped (deadline)" >&2; break; }
    for m in cpu auto; do
      echo "blake3-$m disk $(g checksum -a blake3 --device $m "$big")"
      echo "crc32c-$m disk $(g checksum -a crc32c --device $m "$big")"
      echo "stats-$m disk $(g stats --device $m "$f32")"
    done
    echo "read disk $(g bench read "$big")"
  done >"$out/disk-raw.txt"
  medians "$out/disk-raw.txt"
  echo "b3sum --num-threads $(nproc) (disk): $(python3 bench/best_time.py 3 b3sum --num-threads "$(nproc)" "$big") s"
  echo "checksum --device auto (disk): $(python3 bench/best_time.py 3 build/hetpipe checksum --device auto --no-progress "$big") s"
  cmp <(b3sum "$big" | cut -d' ' -f1) <(build/hetpipe checksum --no-progress "$big" | cut -d' ' -f1) && echo "disk file: hetpipe == b3sum"
  } 2>&1 | tee "$out/disk.txt"
  rm -f "$big" "$f32"
}

sec_long() {
  # A job long enough for auto mode to bring its GPU lanes up: 4 copies of the 4 GiB file in one
  # file, whole process (best of 3), with -v's join line.
  step "long job: 4 x $size in one file, whole process"
  local big=/dev/shm/hetpipe-bench/random-$size.bin long=/dev/shm/hetpipe-bench/long.bin
  [[ -f $long ]] || cat "$big" "$big" "$big" "$big" >"$long"
  local bytes; bytes=$(stat -c %s "$long")
  {
  echo "b3sum --num-threads $(nproc): $(python3 bench/best_time.py 3 b3sum --num-threads "$(nproc)" "$long") s for $bytes bytes"
  for a in blake3 crc32c; do
    for m in cpu gpu auto; do
      echo "checksum -a $a --device $m: $(python3 bench/best_time.py 3 build/hetpipe checksum -a $a --device $m --no-progress "$long") s"
      build/hetpipe checksum -a $a --device $m -v --no-progress "$long" 2>&1 >/dev/null | grep -E "GB/s|GPU lanes|lane gpu"
    done
  done
  # stats over 16 GiB of f32 (four copies of the 4 GiB file's data, one .npy): the 4 GiB job is
  # too short for auto mode's GPU lanes (0.13 s), this one is not. The checksums' 16 GiB go first
  # (/dev/shm is memory, and numpy holds the 16 GiB of floats while it writes them).
  rm -f "$long"
  f32_file
  local long32=/dev/shm/hetpipe-bench/f32-long.npy
  [[ -f $long32 ]] || python3 - "$f" "$long32" <<'PY'
import numpy as np, sys
a = np.load(sys.argv[1], mmap_mode="r")
np.save(sys.argv[2], np.concatenate([a, a, a, a]))
PY
  for m in cpu gpu auto; do
    echo "stats --device $m (16 GiB f32): $(python3 bench/best_time.py 3 build/hetpipe stats --device $m --no-progress "$long32") s"
    build/hetpipe stats --device $m -v --no-progress --json "$long32" 2>"$out/long-stats-$m.err" >"$out/long-stats-$m.json"
    grep -E "GB/s|GPU lanes|lane gpu" "$out/long-stats-$m.err"
  done
  cmp "$out/long-stats-cpu.json" "$out/long-stats-gpu.json" && cmp "$out/long-stats-cpu.json" "$out/long-stats-auto.json" && echo "16 GiB stats: cpu == gpu == auto"
  rm -f "$long32"
  } 2>&1 | tee "$out/long.txt"
  rm -f "$long"
}

sec_shapes() {
  # Reading and hashing outside the engine (bench/hash_shapes.cpp), 4 GiB hot: the engine's shape
  # (readers fill shared slots, other threads hash), threads that read into their own buffer and
  # hash it there, and threads that hash a mapping (b3sum's shape), next to b3sum. Which one this
  # CPU rewards decides whether CPU lanes should read for themselves.
  step "hash shapes (BLAKE3 outside the engine, best of 3)"
  local big=/dev/shm/hetpipe-bench/random-$size.bin n; n=$(nproc)
  {
  if g++ -O2 -std=c++20 -pthread -I. bench/hash_shapes.cpp build/host/libhetpipe_host.a -o /tmp/hash_shapes; then
    echo "b3sum --num-threads $n: $(python3 bench/best_time.py 3 b3sum --num-threads "$n" "$big") s for $(stat -c %s "$big") bytes"
    b3sum "$big"
    for c in 1M 256K; do
      /tmp/hash_shapes "$big" $c pool "$n" "$n" $((3 * n))
      /tmp/hash_shapes "$big" $c pool "$n" $((n / 2)) $((3 * n))
      /tmp/hash_shapes "$big" $c local "$n"
      /tmp/hash_shapes "$big" $c local $((n / 2))
      /tmp/hash_shapes "$big" $c mmap "$n"
      /tmp/hash_shapes "$big" $c window "$n" 64M
    done
  fi
  } 2>&1 | tee "$out/shapes.txt"
}

sec_fixed() {
  # A job's fixed costs, whole process, on a 4 KiB file: what a GPU job pays before and after
  # its work (driver and context start, pinned pool, teardown) next to a CPU job.
  step "fixed costs (whole process, best of 3)"
  local small=/dev/shm/hetpipe-bench/4k.bin
  head -c 4096 /dev/urandom >"$small"
  w() { python3 bench/best_time.py 3 "$@"; }
  {
  echo "hetpipe --version: $(w build/hetpipe --version) s"
  echo "hetpipe info: $(w build/hetpipe info) s"
  for m in cpu gpu auto; do
    echo "checksum --device $m (4 KiB): $(w build/hetpipe checksum --device $m --no-progress "$small") s"
    build/hetpipe checksum --device $m -v --no-progress "$small" 2>&1 >/dev/null | grep -E "setup|GPU lanes"
  done
  # stdin of unknown length: auto mode's GPU lanes wait for 20 ms of job before starting
  echo "checksum --device auto (4 KiB on stdin): $(w bash -c "build/hetpipe checksum --device auto --no-progress - <$small") s"
  # One process per small file, as a shell loop over files runs it: 2026-11-29 on the 2-core box,
  # 3.9 ms a file (7.5 before one-chunk jobs ran on one lane), b3sum 1.6 ms.
  echo "checksum of 4 KiB through a pipe: $(w bash -c "cat $small | build/hetpipe checksum --no-progress") s"
  echo "100 checksum processes of 4 KiB: $(w bash -c "for i in {1..100}; do build/hetpipe checksum --no-progress $small; done >/dev/null") s"
  command -v b3sum >/dev/null &&
    echo "100 b3sum processes of 4 KiB: $(w bash -c "for i in {1..100}; do b3sum $small; done >/dev/null") s"
  # The same steps outside hetpipe, one by one (bench/cuda_fixed.cpp), and its whole process.
  local nv; nv=$(dirname "$(command -v nvcc)")/..
  if g++ -O2 bench/cuda_fixed.cpp -I"$nv/include" -L"$nv/lib64" -lcudart -o /tmp/cuda_fixed; then
    /tmp/cuda_fixed; /tmp/cuda_fixed
    echo "cuda_fixed, whole process: $(w /tmp/cuda_fixed) s"
  fi
  } 2>&1 | tee "$out/fixed.txt"
}


for s in $sections; do
  if (( ${DEADLINE:-1000000} - (SECONDS - t0) < 20 )); then
    step "skipped $s (deadline)"
    continue
  fi
  "sec_$s"
  pack
done
step "done"
