#!/usr/bin/env bash
# Benchmark of `hetpipe image --ops gray,blur:sigma=2,sobel` in each device mode next to OpenCV
# (bench/image_ref.py: the same chain with cv2, a thread per core) and the read-only ceiling, on
# two generated sets: many HD photos (RGB PPM) and a few large gray PGMs. Hot page cache; outputs
# go to DIR/image-out, removed before every run. Whole-process wall time, best of REPS.
#   bench/image.sh [DIR]     (default /tmp/hetpipe-bench)
# Environment: HETPIPE (build/hetpipe), REPS (3), HD_COUNT (2000), BIG_COUNT (200),
# BIG_SIZE (8192x8192), PNG_COUNT (500: HD photos as PNG, the decoders' and encoders' set; 0 skips
# it), SETS (which sets, default "hd big png").
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/hetpipe-bench}
hp=${HETPIPE:-build/hetpipe}
reps=${REPS:-3}
hd_count=${HD_COUNT:-2000}
big_count=${BIG_COUNT:-200}
big_size=${BIG_SIZE:-8192x8192}
png_count=${PNG_COUNT:-500}
sets=${SETS:-hd big png}
(( png_count > 0 )) || sets=${sets//png/}
ops=gray,blur:sigma=2,sobel
out=$dir/image-out
mkdir -p "$dir"

. bench/lib.sh

# make_set NAME SIZE CHANNELS COUNT: DIR/images-NAME, generated once; .spec says what it holds, and
# a set made with other parameters is made again.
make_set() {
  local set=$dir/images-$1 spec="$2 channels=$3 count=$4 depth=8 seed=1 format=${5:-pnm}"
  if [[ ! -f $set/.spec || $(cat "$set/.spec") != "$spec" ]]; then
    rm -rf "$set" "$set.tmp"
    "$hp" gen-images --size "$2" --channels "$3" --count "$4" --depth 8 --seed 1 --prefix "$1" \
      --format "${5:-pnm}" -o "$set.tmp" >/dev/null
    echo "$spec" >"$set.tmp/.spec"
    mv "$set.tmp" "$set"
  fi
}
[[ $sets == *hd* ]] && make_set hd 1920x1080 3 "$hd_count"
[[ $sets == *big* ]] && make_set big "$big_size" 1 "$big_count"
[[ $sets == *png* ]] && make_set png 1920x1080 3 "$png_count" png

# best CMD...: like t, but with the output folder removed (untimed) before each run.
best() {
  local b="" s i
  for ((i = 0; i < reps; ++i)); do
    rm -rf "$out"
    s=$(reps=1 t "$@") || { echo "$s"; return; }
    b=$(python3 -c "import sys; print(min(float(a) for a in sys.argv[1:] if a))" "$s" ${b:+"$b"})
  done
  echo "$b"
}
# row NAME SECONDS: a table row; megapixels and the OpenCV time ($ref_s, may be empty) are globals.
row() {
  python3 - "$1" "$2" "$mpix" "${ref_s:-}" <<'PY'
import sys
name, t, mpix, ref = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
if t.startswith("FAIL"):
    print(f"| {name} | {t} | | |")
else:
    s = float(t)
    ratio = f"{float(ref) / s:.2f}" if ref and not ref.startswith("FAIL") else "n/a"
    print(f"| {name} | {s:.3f} | {mpix / s:.1f} | {ratio} |")
PY
}

gpu=$(gpu_name)
modes="cpu"
# mode[:GPU lanes per device[:CPU lanes]]; the 4-lane runs tell whether more lane threads (header
# parsing, PNG coding, output commits) pay for image jobs. Image jobs keep every CPU lane beside
# the GPU lanes (other jobs stop half of them); the auto:2:nproc run, which gives --cpu-threads,
# was the measure of that (2026-11-29) and should now equal plain auto.
[[ -n $gpu ]] && modes="cpu gpu gpu:4 auto auto:4 auto:2:$(nproc)"
have_cv2=""
python3 -c 'import cv2' 2>/dev/null && have_cv2=$(python3 -c 'import cv2; print(cv2.__version__)')
machine_line "$gpu"
echo "chain: --ops $ops; ratio: OpenCV's time / the run's time (above 1: faster than OpenCV)"

for name in $sets; do
  set=$dir/images-$name
  if [[ $name == hd ]]; then
    count=$hd_count size=1920x1080 what="RGB 8-bit PPM"
  elif [[ $name == png ]]; then
    count=$png_count size=1920x1080 what="RGB 8-bit PNG (outputs: gray PNG, zlib level 6)"
  else
    count=$big_count size=$big_size what="gray 8-bit PGM"
  fi
  mpix=$(python3 -c "print($count * ${size%x*} * ${size#*x} / 1e6)")
  cat "$set"/* >/dev/null
  echo
  echo "### $count images of $size, $what ($mpix megapixels), hot cache"
  echo "| run | seconds | megapixels/s | ratio vs OpenCV |"
  echo "|---|---|---|---|"
  ref_s=""
  if [[ -n $have_cv2 ]]; then
    ref_s=$(best python3 bench/image_ref.py "$set" "$out" "$(nproc)")
    row "OpenCV $have_cv2 (bench/image_ref.py, $(nproc) threads)" "$ref_s"
  else
    echo "| OpenCV: not available (python3 cannot import cv2) | | | |"
  fi
  row "read-only ceiling (bench read)" "$(t "$hp" bench read "$set"/*)"
  sums="" same=1
  for mode in $modes; do
    IFS=: read -r m g c <<<"$mode"
    lanes=()
    [[ -n $g ]] && lanes=(--gpu-lanes "$g")
    [[ -n $c ]] && lanes+=(--cpu-threads "$c")
    row "image -r --device $m ${lanes[*]}" \
      "$(best "$hp" image --ops "$ops" --device "$m" "${lanes[@]}" --no-progress -r -o "$out" "$set/")"
    [[ $modes == cpu ]] && continue
    # Every mode must write the same bytes: the last run's outputs, by checksum.
    s=$("$hp" checksum -r --no-progress "$out" | sort) || s="(no output)"
    if [[ -z $sums ]]; then
      sums=$s
    elif [[ $s != "$sums" ]]; then
      echo "(OUTPUTS OF --device $mode DIFFER FROM --device cpu)"
      same=0
    fi
  done
  if [[ $modes != cpu && $same == 1 ]]; then
    echo "(every device mode wrote the same bytes as --device cpu)"
  fi
  rm -rf "$out"
done
