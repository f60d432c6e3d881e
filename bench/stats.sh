#!/usr/bin/env bash
# Benchmark of `hetpipe stats` against the read-only ceiling of the same pipeline, hot page cache.
#   bench/stats.sh [DATA_DIR] [SIZE]     (default: /tmp/hetpipe-bench, 4G)
# Prints one markdown table row per run: what, GB/s, ratio to the read-only ceiling. Needs the
# build in ./build (scripts/setup.sh). On a GPU machine it runs --device cpu, gpu and auto; with
# python3 + numpy it also times numpy's read + min/max/mean/std on the same file.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/hetpipe-bench}
size=${2:-4G}
hp=${HETPIPE:-build/hetpipe}
args=${HP_ARGS:-}  # more options for the operator's runs (word-split), e.g. HP_ARGS="--reads lane"
mkdir -p "$dir"
file=$dir/f32-$size.npy
bytes=$(numfmt --from=iec "$size")
[[ -f $file ]] || "$hp" gen --dtype f32 --rows $((bytes / 4)) --npy --seed 1 -o "$file"
cat "$file" >/dev/null  # hot page cache
cat "$file" >/dev/null
reps=${REPS:-3}

best() {  # best GB/s of $reps runs of: hetpipe ARGS (uses -v's summary line)
  local b=0
  for _ in $(seq "$reps"); do
    local g
    g=$("$hp" "$@" -v --no-progress 2>&1 >/dev/null | sed -n 's/.*(\([0-9.]*\) GB\/s).*/\1/p' | head -1)
    b=$(python3 -c "print(max($b, ${g:-0}))")
  done
  echo "$b"
}

gpu=$("$hp" info --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["devices"]; print(d[0]["name"] if d else "")')
cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
echo "machine: $(nproc) cores ($cpu)${gpu:+, $gpu}; file $file ($size f32, hot cache); $(date -u +%F); commit ${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}${HP_ARGS:+; options $HP_ARGS}"
ceiling=$(best bench read "$file")
echo "| run | GB/s | vs read-only |"
echo "|---|---|---|"
echo "| read-only ceiling (bench read) | $ceiling | 1.00 |"
modes="cpu"
[[ -n $gpu ]] && modes="cpu gpu auto"
for m in $modes; do
  g=$(best stats --device "$m" $args "$file")
  echo "| stats --device $m | $g | $(python3 -c "print(f'{$g / $ceiling:.2f}')") |"
done
if python3 -c 'import numpy' 2>/dev/null; then
  g=$(python3 - "$file" <<'PY'
import sys, time, numpy as np
t = time.perf_counter(); a = np.load(sys.argv[1]); a.min(); a.max(); a.mean(); a.std()
print(f"{a.nbytes / (time.perf_counter() - t) / 1e9:.2f}")
PY
)
  echo "| numpy load + min/max/mean/std | $g | $(python3 -c "print(f'{$g / $ceiling:.2f}')") |"
fi
