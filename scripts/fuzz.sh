#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz in build-fuzz (clang, ASan + UBSan), writes their
# seeds and runs them one after the other (tests/fuzz/README.md).
#   scripts/fuzz.sh [TARGET...]     targets: pnm png npy csv age_header age_keys age_decrypt text
# Environment: FUZZ_TIME (seconds per target, default 240), CXX (default clang++-14),
# BUILD (default build-fuzz), JOBS (build jobs, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-fuzz}
FUZZ_TIME=${FUZZ_TIME:-240}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pnm png npy csv age_header age_keys age_decrypt text)

declare -A max_len=([pnm]=2048 [png]=4096 [npy]=1024 [csv]=1024 [age_header]=4096 [age_keys]=1024
                    [age_decrypt]=4096 [text]=512)

CXX=${CXX:-clang++-14} cmake -S . -B "$BUILD" -DHETPIPE_FUZZ=ON -DHETPIPE_CUDA=OFF \
  -DHETPIPE_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "${JOBS:-2}" --target fuzz_seeds $(printf 'fuzz_%s ' "${targets[@]}")
"$BUILD/tests/fuzz/fuzz_seeds" "$BUILD/fuzz-seeds" >/dev/null
mkdir -p "$BUILD/fuzz-logs" "$BUILD/fuzz-artifacts"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$BUILD/fuzz-corpus/$t"
  echo "== fuzz_$t (${FUZZ_TIME}s, log $BUILD/fuzz-logs/$t.log)"
  if ! "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$FUZZ_TIME" -rss_limit_mb=2048 -timeout=5 \
      -max_len="${max_len[$t]}" -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/$t-" \
      "$BUILD/fuzz-corpus/$t" "$BUILD/fuzz-seeds/$t" >"$BUILD/fuzz-logs/$t.log" 2>&1; then
    status=1
    grep -E "FUZZ BUG|ERROR|SUMMARY|Test unit written" "$BUILD/fuzz-logs/$t.log" || true
  fi
  grep -E "^#[0-9]+.*(DONE|cov:)" "$BUILD/fuzz-logs/$t.log" | tail -1
done
exit $status
