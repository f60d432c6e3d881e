#!/usr/bin/env bash
# Benchmark of `hetpipe count` (lines, words, bytes) in each device mode next to GNU wc, on one
# large text file and on many small ones, hot page cache. Times are whole-process wall clock (best
# of REPS), so start-up and pool allocation count.
#   bench/count.sh [DIR] [SIZE] [SMALL_COUNT]     (default /tmp/hetpipe-bench 4G 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/hetpipe-bench}
size=${2:-4G}
count=${3:-20000}
hp=${HETPIPE:-build/hetpipe}
args=${HP_ARGS:-}  # more options for the operator's runs (word-split)
reps=${REPS:-3}
mkdir -p "$dir"
. bench/lib.sh

# Text made once: gen's bytes as base64 lines of 100 characters, '+' and '/' turned into a space
# and a tab (about 4 words a line).
big=$dir/text-$size.txt
bytes=$(numfmt --from=iec "$size")
if [[ ! -f $big ]]; then
  # 75 bytes make a line of 101 characters; the last line is cut to the size.
  "$hp" gen --dtype u8 --dist uniform --rows $(((bytes + 100) / 101 * 75)) -o "$big.bin"
  base64 -w 100 "$big.bin" | tr '+/' ' \t' >"$big.tmp"
  truncate -s "$bytes" "$big.tmp"
  rm -f "$big.bin"
  mv "$big.tmp" "$big"
fi
small=$dir/text-small-$count
small_files "$small" "$count" "$big"
small_bytes=$((count * 65536))
cat "$big" >/dev/null
cat "$small"/* >/dev/null

device_modes
echo
echo "### one text file of $size, hot cache"
echo "| run | GB/s |"
echo "|---|---|"
echo "| read-only ceiling (bench read) | $(gbps "$bytes" "$(t "$hp" bench read "$big")") |"
echo "| wc (LC_ALL=C) | $(gbps "$bytes" "$(t env LC_ALL=C wc "$big")") |"
echo "| wc -l | $(gbps "$bytes" "$(t wc -l "$big")") |"
for m in $modes; do
  echo "| count --device $m | $(gbps "$bytes" "$(t "$hp" count --device "$m" $args --no-progress "$big")") |"
done
echo
echo "### $count text files of 64 KiB, hot cache"
echo "| run | GB/s |"
echo "|---|---|"
echo "| read-only ceiling (bench read) | $(gbps "$small_bytes" "$(t "$hp" bench read "$small"/*)") |"
echo "| wc (LC_ALL=C, one process) | $(gbps "$small_bytes" "$(t bash -c "LC_ALL=C wc $small/* >/dev/null")") |"
for m in $modes; do
  echo "| count -r --device $m | $(gbps "$small_bytes" "$(t "$hp" count -r --device "$m" $args --no-progress "$small")") |"
done
