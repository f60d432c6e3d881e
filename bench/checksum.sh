#!/usr/bin/env bash
# Benchmark of `hetpipe checksum` (BLAKE3, CRC32C, CRC32) in each device mode next to b3sum, on one
# large file and on many small files, hot page cache. Times are whole-process wall clock (best of
# REPS), so start-up and pool allocation count.
#   bench/checksum.sh [DIR] [SIZE] [SMALL_COUNT]     (default /tmp/hetpipe-bench 4G 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/hetpipe-bench}
size=${2:-4G}
count=${3:-20000}
hp=${HETPIPE:-build/hetpipe}
args=${HP_ARGS:-}  # more options for the operator's runs (word-split), e.g. HP_ARGS="--reads lane"
reps=${REPS:-3}
mkdir -p "$dir"
. bench/lib.sh

big=$dir/random-$size.bin
bytes=$(numfmt --from=iec "$size")
random_file "$big" "$bytes"
small=$dir/small-$count
small_files "$small" "$count" "$big"
small_bytes=$((count * 65536))
cat "$big" >/dev/null
cat "$small"/* >/dev/null

device_modes
echo
echo "### one file of $size (random bytes), hot cache"
echo "| run | GB/s |"
echo "|---|---|"
echo "| read-only ceiling (bench read) | $(gbps "$bytes" "$(t "$hp" bench read "$big")") |"
if command -v b3sum >/dev/null; then
  echo "| b3sum --num-threads $(nproc) | $(gbps "$bytes" "$(t b3sum --num-threads "$(nproc)" "$big")") |"
fi
for a in blake3 crc32c crc32; do
  for m in $modes; do
    echo "| checksum -a $a --device $m | $(gbps "$bytes" "$(t "$hp" checksum -a "$a" --device "$m" $args --no-progress "$big")") |"
  done
done
echo
echo "### $count files of 64 KiB, hot cache"
echo "| run | GB/s |"
echo "|---|---|"
echo "| read-only ceiling (bench read) | $(gbps "$small_bytes" "$(t "$hp" bench read "$small"/*)") |"
if command -v b3sum >/dev/null; then
  echo "| b3sum (one process, all files) | $(gbps "$small_bytes" "$(t bash -c "b3sum $small/* >/dev/null")") |"
  echo "| b3sum (xargs -P $(nproc)) | $(gbps "$small_bytes" "$(t bash -c "ls $small | sed 's#^#$small/#' | xargs -P $(nproc) -n 500 b3sum >/dev/null")") |"
fi
for a in blake3 crc32c crc32; do
  for m in $modes; do
    echo "| checksum -r -a $a --device $m | $(gbps "$small_bytes" "$(t "$hp" checksum -r -a "$a" --device "$m" $args --no-progress "$small")") |"
  done
done
