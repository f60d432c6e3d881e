#!/usr/bin/env bash
# Benchmark of `hetpipe stats` over CSV next to numpy (np.loadtxt, then min/max/mean/std) in the
# same run, hot page cache, whole-process wall clock (best of REPS).
#   bench/csv.sh [DIR] [COPIES]     (default /tmp/hetpipe-bench 16: 16 x 64 MiB of records)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/hetpipe-bench}
copies=${2:-16}
hp=${HETPIPE:-build/hetpipe}
args=${HP_ARGS:-}
reps=${REPS:-3}
mkdir -p "$dir"
. bench/lib.sh

# 64 MiB of records (an id, a price with 2 decimals, a small integer, a double printed in full),
# made once with a fixed seed, then COPIES of them under one header line.
body=$dir/csv-body.csv
if [[ ! -f $body ]]; then
  python3 - "$body.tmp" <<'PY'
import random, sys
r = random.Random(3)
out, n, i = [], 0, 0
while n < 64 << 20:
    line = f"{i},{r.uniform(0, 1000):.2f},{r.randint(-50, 50)},{r.gauss(0, 1)!r}\n"
    out.append(line); n += len(line); i += 1
open(sys.argv[1], "w").write("".join(out))
PY
  mv "$body.tmp" "$body"
fi
big=$dir/records-$copies.csv
if [[ ! -f $big ]]; then
  { echo "id,price,qty,score"; for _ in $(seq "$copies"); do cat "$body"; done; } >"$big.tmp"
  mv "$big.tmp" "$big"
fi
bytes=$(stat -c %s "$big")
cat "$big" >/dev/null

device_modes
echo
echo "### CSV, $(numfmt --to=iec "$bytes") (4 columns), hot cache"
echo "| run | GB/s |"
echo "|---|---|"
echo "| read-only ceiling (bench read) | $(gbps "$bytes" "$(t "$hp" bench read "$big")") |"
for m in $modes; do
  echo "| stats (CSV), --device $m | $(gbps "$bytes" "$(t "$hp" stats --device "$m" $args --no-progress "$big")") |"
done
echo "| stats --cpu-threads 1 (CSV) | $(gbps "$bytes" "$(t "$hp" stats --device cpu --cpu-threads 1 $args --no-progress "$big")") |"
if python3 -c "import numpy" 2>/dev/null; then
  echo "| numpy: loadtxt, then min, max, mean, std | $(gbps "$bytes" "$(python3 bench/best_time.py 1 python3 -c "import numpy as np, sys; a = np.loadtxt(sys.argv[1], delimiter=',', skiprows=1); print(a.min(0), a.max(0), a.mean(0), a.std(0))" "$big")") |"
fi
