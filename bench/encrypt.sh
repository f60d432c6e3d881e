#!/usr/bin/env bash
# Benchmark of `hetpipe encrypt` / `decrypt` (age v1, X25519 recipient) in each device mode next to
# the age command, on one file, hot page cache, output written to the same folder. Whole-process
# wall time, best of REPS.
#   bench/encrypt.sh [DIR] [SIZE]     (default /tmp/hetpipe-bench 4G)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/hetpipe-bench}
size=${2:-4G}
hp=${HETPIPE:-build/hetpipe}
reps=${REPS:-2}
mkdir -p "$dir"
plain=$dir/random-$size.bin
bytes=$(numfmt --from=iec "$size")
[[ -f $plain ]] || "$hp" gen --dtype u64 --dist hard --rows $((bytes / 8)) -o "$plain"
key=$dir/bench-key.txt
[[ -f $key ]] || "$hp" keygen -o "$key" 2>/dev/null
R=$(sed -n 's/^# public key: //p' "$key")
cat "$plain" >/dev/null

. bench/lib.sh

device_modes
echo "file: $size of random bytes, hot cache; output in the same folder"
echo "| run | GB/s |"
echo "|---|---|"
echo "| read-only ceiling (bench read) | $(gbps "$bytes" "$(t "$hp" bench read "$plain")") |"
# What the output path allows: the same pipeline and writer copying (temp file, fsync, rename), and
# cp (no fsync), into the same folder.
echo "| copy ceiling (bench copy) | $(gbps "$bytes" "$(t "$hp" bench copy --no-progress "$plain" -o "$dir/copy.bin")") |"
rm -f "$dir/copy.bin"
echo "| cp | $(gbps "$bytes" "$(t cp "$plain" "$dir/copy.bin")") |"
rm -f "$dir/copy.bin"
if command -v age >/dev/null; then
  echo "| age -r (encrypt) | $(gbps "$bytes" "$(t age -r "$R" -o "$dir/age.age" "$plain")") |"
  echo "| age -d (decrypt) | $(gbps "$bytes" "$(t age -d -i "$key" -o "$dir/age.out" "$dir/age.age")") |"
  rm -f "$dir/age.out"
fi
for m in $modes; do
  echo "| encrypt --device $m | $(gbps "$bytes" "$(t "$hp" encrypt --device "$m" --no-progress -r "$R" -o "$dir/hp.age" "$plain")") |"
  echo "| decrypt --device $m | $(gbps "$bytes" "$(t "$hp" decrypt --device "$m" --no-progress -i "$key" -o "$dir/hp.out" "$dir/hp.age")") |"
done
cmp -s "$plain" "$dir/hp.out" && echo "(round trip verified)" || echo "(ROUND TRIP MISMATCH)"
if command -v age >/dev/null; then
  age -d -i "$key" "$dir/hp.age" | cmp -s - "$plain" && echo "(age decrypts hetpipe's file)" || echo "(AGE FAILED ON hetpipe's FILE)"
fi
rm -f "$dir/hp.out" "$dir/hp.age" "$dir/age.age"
