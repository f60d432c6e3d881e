#!/usr/bin/env bash
# `hetpipe image` end to end: names and folder layout kept under -o, format conversion, a batch
# with bad files (each reported on its own line, the others written, exit 1, nothing partial left),
# usage errors. HETPIPE names the binary.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

d=$tmp/img
mkdir -p "$d/in/sub"
"$HETPIPE" gen-images --size 33x17 --channels 3 --count 3 --prefix rgb -o "$d/in" &&
  "$HETPIPE" gen-images --size 20x9 --channels 1 --depth 16 --count 2 --prefix g16 -o "$d/in/sub" &&
  "$HETPIPE" gen-images --size 8x5 --channels 4 --format png --count 2 --prefix rgba -o "$d/in/sub" &&
  ok || bad "gen-images"
[[ -f $d/in/rgb-000002.ppm && -f $d/in/sub/g16-000001.pgm && -f $d/in/sub/rgba-000000.png ]] &&
  ok || bad "gen-images names: $(ls -R "$d/in")"
echo "not an image" >"$d/in/notes.txt"

# A folder walk keeps the layout and skips files that are not images by name.
"$HETPIPE" image -r --ops gray,blur:sigma=1.5,sobel -o "$d/out" "$d/in" 2>"$tmp/err" &&
  [[ ! -s $tmp/err ]] && ok || bad "image -r: $(cat "$tmp/err")"
[[ $(find "$d/out" -type f | wc -l) -eq 7 && ! -e $d/out/notes.txt ]] && ok ||
  bad "image -r outputs: $(find "$d/out" -type f)"
head -c 2 "$d/out/rgb-000000.ppm" | grep -q P5 && ok || bad "gray output is not P5"
head -c 2 "$d/out/sub/g16-000000.pgm" | grep -q P5 && grep -qa "^65535$" "$d/out/sub/g16-000000.pgm" &&
  ok || bad "16-bit output"
head -c 4 "$d/out/sub/rgba-000000.png" | grep -q PNG && ok || bad "PNG output keeps PNG"

# Deterministic: the same bytes for another chunk size and lane count.
"$HETPIPE" image -r --ops gray,blur:sigma=1.5,sobel --cpu-threads 1 --slots 1 -o "$d/out2" "$d/in" &&
  diff -r "$d/out" "$d/out2" >/dev/null && ok || bad "outputs depend on lanes or slots"
# Threads sharing each image: the same bytes, on --cpu-threads / N lanes.
"$HETPIPE" image -r --ops gray,blur:sigma=1.5,sobel --cpu-threads 4 --threads-per-image 2 -o "$d/out3" "$d/in" >"$tmp/out" &&
  diff -r "$d/out" "$d/out3" >/dev/null && grep -q "2 CPU lanes" "$tmp/out" && ok ||
  bad "--threads-per-image 2: $(cat "$tmp/out")"
"$HETPIPE" image -r --ops gray,blur:sigma=1.5,sobel --cpu-threads 1 --threads-per-image 6 -o "$d/out4" "$d/in" >"$tmp/out" &&
  diff -r "$d/out" "$d/out4" >/dev/null && grep -q "1 CPU lane" "$tmp/out" && ok ||
  bad "--threads-per-image above --cpu-threads: $(cat "$tmp/out")"
rm -rf "$d/out2" "$d/out3" "$d/out4"
expect_error "--threads-per-image 5000" 2 "--threads-per-image must be at most 4096" -- image --ops gray --threads-per-image 5000 -o "$d/o" "$d/in/rgb-000000.ppm"

# --format converts and changes the extension; an image with alpha cannot become PNM.
"$HETPIPE" image --ops invert --format png -o "$d/png" "$d/in"/rgb-*.ppm && ls "$d/png"/rgb-00000{0,1,2}.png >/dev/null &&
  ok || bad "--format png: $(ls "$d/png")"
"$HETPIPE" image --ops invert --format pnm -o "$d/pnm" "$d/png/rgb-000000.png" "$d/in/sub/rgba-000000.png" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && -f $d/pnm/rgb-000000.pnm && ! -e $d/pnm/rgba-000000.pnm ]] && grep -q "rgba-000000.png: .*cannot be written as PNM" "$tmp/err" &&
  ok || bad "--format pnm with alpha: rc=$rc $(cat "$tmp/err")"
# invert twice gives the input back, through PNG and PNM.
cmp -s "$d/pnm/rgb-000000.pnm" "$d/in/rgb-000000.ppm" && ok || bad "invert twice through PNG"

# A batch with bad files: each named with its reason, the good ones written, exit 1, nothing else.
mkdir -p "$d/mix"
cp "$d/in/rgb-000000.ppm" "$d/in/rgb-000001.ppm" "$d/mix/"
head -c 100 "$d/in/rgb-000002.ppm" >"$d/mix/cut.ppm"
printf 'P6\n3 x\n' >"$d/mix/header.ppm"
printf 'P3\n1 1\n255\n0 0 0\n' >"$d/mix/plain.ppm"
: >"$d/mix/empty.pgm"
printf 'hello' >"$d/mix/text.png"
"$HETPIPE" image -r --ops blur:1 -o "$d/mixout" "$d/mix" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 ]] && ok || bad "bad batch exit $rc"
grep -q "^hetpipe: $d/mix/cut.ppm: PNM pixel data truncated" "$tmp/err" && ok || bad "truncated: $(cat "$tmp/err")"
grep -q "^hetpipe: $d/mix/header.ppm: malformed PNM header" "$tmp/err" && ok || bad "header: $(cat "$tmp/err")"
grep -q "^hetpipe: $d/mix/plain.ppm: unsupported PNM format P3" "$tmp/err" && ok || bad "plain: $(cat "$tmp/err")"
grep -q "^hetpipe: $d/mix/empty.pgm: empty file" "$tmp/err" && ok || bad "empty: $(cat "$tmp/err")"
grep -q "^hetpipe: $d/mix/text.png: not a PNM or PNG image" "$tmp/err" && ok || bad "text: $(cat "$tmp/err")"
grep -q "^hetpipe: 5 of 7 images failed; the other 2 were written$" "$tmp/err" && ok || bad "summary: $(cat "$tmp/err")"
[[ $(wc -l <"$tmp/err") -eq 6 && ! -s $tmp/out ]] && ok || bad "bad batch output: $(cat "$tmp/err")"
[[ $(ls -A "$d/mixout" | sort | tr '\n' ' ') == "rgb-000000.ppm rgb-000001.ppm " ]] && ok ||
  bad "bad batch left: $(ls -A "$d/mixout")"

# The trace shows reads, host work and the writes of the outputs.
"$HETPIPE" image -r --ops gray --trace "$tmp/trace.json" -o "$d/traced" "$d/in" >/dev/null &&
  python3 - "$tmp/trace.json" <<'PY' && ok || bad "trace of an image job"
import json, sys
ev = json.load(open(sys.argv[1]))
ev = ev["traceEvents"] if isinstance(ev, dict) else ev
names = {e.get("name") for e in ev}
sys.exit(0 if {"read", "host", "write"} <= names else 1)
PY

# --json for tools.
"$HETPIPE" image -r --json --ops gray -o "$d/json" "$d/mix" >"$tmp/out" 2>/dev/null
grep -q '"written": 2' "$tmp/out" && grep -q '"reason": "empty file' "$tmp/out" && ok ||
  bad "--json: $(cat "$tmp/out")"

# A sigma so small that 2 sigma^2 underflows (once a crash): the identity.
"$HETPIPE" image --ops blur:sigma=1e-300 -o "$d/tiny" "$d/in/rgb-000000.ppm" &&
  cmp -s "$d/tiny/rgb-000000.ppm" "$d/in/rgb-000000.ppm" && ok || bad "blur:sigma=1e-300"

# Usage errors: one line, exit 2 (or 1 for files), no output folder content.
expect_error "bad op" 2 "unknown op" -- image --ops gray,blurr -o "$d/x" "$d/in/rgb-000000.ppm"
expect_error "bad sigma" 2 "sigma" -- image --ops blur:sigma=0 -o "$d/x" "$d/in/rgb-000000.ppm"
# Once taken for 4 KiB (each image then larger than a chunk, in the second job's chunks).
expect_error "--chunk-size 1" 2 "chunk-size must be between 4K and 1G" -- image --ops gray \
  --chunk-size 1 -o "$d/x" "$d/in/rgb-000000.ppm"
[[ ! -e "$d/x" ]] && ok || bad "--chunk-size 1 made the output folder"
pushd "$tmp" >/dev/null  # where -o '' wrote its output once
expect_error "no output folder" 2 "image: no output folder" -- image --ops gray -o "" "$d/in/rgb-000000.ppm"
[[ ! -e rgb-000000.ppm ]] && ok || bad "-o '' wrote into the current folder"
popd >/dev/null
# A folder without -r is one of the batch's bad inputs (it used to end the batch): reported, and
# the others are written.
"$HETPIPE" image --ops gray -o "$d/xr" "$d/in/rgb-000000.ppm" "$d/in" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && -f "$d/xr/rgb-000000.ppm" && $(cat "$tmp/err") == "hetpipe: $d/in: is a directory (-r walks folders)
hetpipe: 1 of 2 images failed; the other 1 was written" ]] && ok ||
  bad "a folder without -r among files: rc $rc: $(cat "$tmp/out" "$tmp/err")"
rm -rf "$d/xr"
"$HETPIPE" image --ops gray -o "$d/xr" "$d/in" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && ! -e "$d/xr" && $(cat "$tmp/err") == "hetpipe: $d/in: is a directory (-r walks folders)
hetpipe: 1 of 1 image failed; none was written" ]] && ok ||
  bad "the only input a folder without -r: rc $rc: $(cat "$tmp/out" "$tmp/err")"
# A file where an output folder must go fails that folder's images alone (it used to end the
# batch with nothing written, naming no input).
mkdir -p "$d/xs" && : >"$d/xs/sub"
"$HETPIPE" image -r --ops invert -o "$d/xs" "$d/in" >"$tmp/out" 2>"$tmp/err"
rc=$?
in_sub=$(find "$d/in/sub" -type f | wc -l)
[[ $rc -eq 1 && -f "$d/xs/rgb-000002.ppm" && -f "$d/xs/sub" &&
  $(grep -c "^hetpipe: $d/in/sub/.*: cannot create the folder $d/xs/sub: not a directory$" "$tmp/err") -eq $in_sub &&
  $(tail -1 "$tmp/err") == "hetpipe: $in_sub of "*" images failed; the other "*" written" ]] && ok ||
  bad "a file in an output folder's way: rc $rc: $(cat "$tmp/out" "$tmp/err")"
rm -rf "$d/xs"
# The same where every image goes to that folder (it was taken for the -o folder, and ended the
# batch naming no input).
mkdir -p "$d/xs" "$d/one/sub" && : >"$d/xs/sub" && cp "$d/in/rgb-000000.ppm" "$d/one/sub/"
"$HETPIPE" image -r --ops invert -o "$d/xs" "$d/one" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/err") == "hetpipe: $d/one/sub/rgb-000000.ppm: cannot create the folder $d/xs/sub: not a directory
hetpipe: 1 of 1 image failed; none was written" ]] && ok ||
  bad "a file in the way of the only output folder: rc $rc: $(cat "$tmp/out" "$tmp/err")"
rm -rf "$d/xs" "$d/one"
# An -o folder where nothing can be created ends the batch at once, with one line (each image was
# filtered, then failed on a line of its own). Read-only for root too: immutable (chattr +i), where
# the file system has the flag; else, for another user, mode 0555.
mkdir -p "$d/ro"
if chattr +i "$d/ro" 2>/dev/null || { [[ $(id -u) -ne 0 ]] && chmod 555 "$d/ro"; }; then
  expect_error "-o where nothing can be created" 1 "$d/ro: cannot create files in it: " -- \
    image --ops invert -o "$d/ro" "$d/in/rgb-000000.ppm" "$d/in/rgb-000001.ppm"
  chattr -i "$d/ro" 2>/dev/null; chmod 755 "$d/ro"
else
  echo "SKIP: no way to make a read-only folder here (chattr +i refused)" >&2
fi
rm -rf "$d/ro"
# An output that cannot be written (here past `ulimit -f`'s 1 KiB: EFBIG, SIGXFSZ ignored) fails
# alone, as a full disk would; the others are written, and no temporary file is left.
# (Not under a sanitizer, whose own files then fail: TSan takes a SIGBUS.)
if ! sanitized; then
  (trap '' XFSZ; ulimit -f 1; exec "$HETPIPE" image --ops invert -o "$d/xf" "$d/in/rgb-000000.ppm" \
    "$d/in/sub/g16-000000.pgm") >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 && -f "$d/xf/g16-000000.pgm" && $(ls -A "$d/xf") == g16-000000.pgm &&
    $(head -1 "$tmp/err") == "hetpipe: $d/in/rgb-000000.ppm: cannot write $d/xf/rgb-000000.ppm: "*"too large" &&
    $(tail -1 "$tmp/err") == "hetpipe: 1 of 2 images failed; the other 1 was written" ]] && ok ||
    bad "an output that cannot be written: rc $rc: $(ls -A "$d/xf"; cat "$tmp/out" "$tmp/err")"
  rm -rf "$d/xf"
fi
# A missing input is one of the batch's bad files: reported, and the others are written.
"$HETPIPE" image --ops gray -o "$d/xm" "$d/nope.ppm" "$d/in/rgb-000000.ppm" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && -f "$d/xm/rgb-000000.ppm" && $(cat "$tmp/err") == "hetpipe: $d/nope.ppm: no such file or directory
hetpipe: 1 of 2 images failed; the other 1 was written" ]] && ok ||
  bad "missing input among others: rc $rc: $(cat "$tmp/out" "$tmp/err")"
rm -rf "$d/xm"
"$HETPIPE" image --ops gray -o "$d/xm" "$d/nope.ppm" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && ! -e "$d/xm" && $(tail -1 "$tmp/err") == "hetpipe: 1 of 1 image failed; none was written" ]] && ok ||
  bad "the only input missing: rc $rc: $(cat "$tmp/out" "$tmp/err")"
# The same with a trace and a file larger than the chunk (two jobs, one trace file made ahead):
# the missing input's empty output name made the trace's check fail the whole batch.
"$HETPIPE" image --ops invert --chunk-size 4K --trace "$d/new-trace.json" -o "$d/xt" \
  "$d/in/rgb-000000.ppm" "$d/in/sub/g16-000000.pgm" "$d/nope.ppm" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && -f "$d/xt/rgb-000000.ppm" && -f "$d/xt/g16-000000.pgm" && -s "$d/new-trace.json" &&
  $(head -1 "$tmp/err") == "hetpipe: $d/nope.ppm: no such file or directory" ]] && ok ||
  bad "a missing input with a trace over two jobs: rc $rc: $(cat "$tmp/err")"
rm -rf "$d/xt" "$d/new-trace.json"
# A name with a newline stays on one line (escaped as sha256sum escapes names).
nl_name=$d/$'bad\nname.ppm'
printf 'P6\n4 4\n255\n' >"$nl_name"
"$HETPIPE" image --ops gray -o "$d/xn" "$nl_name" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(head -1 "$tmp/err") == "hetpipe: \\$d/bad\\nname.ppm: "* && $(wc -l <"$tmp/err") -eq 2 ]] && ok ||
  bad "a bad image named with a newline: rc $rc: $(cat "$tmp/err")"
rm -rf "$d/xn" "$nl_name"
# One image whose result cannot be held fails alone: past the machine's memory it is refused
# before anything is allocated; under a memory limit (ulimit -v) the failed allocation fails it.
# Each used to end the whole batch ("internal error: std::bad_alloc", or the kernel's OOM kill).
python3 - "$d/e11.png" <<'PY'
import struct, sys, zlib
w = h = 11  # RGBA, 16 bits a sample
raw = b"".join(b"\0" + bytes((x * 7 + y) % 256 for x in range(w * 8)) for y in range(h))
def chunk(t, data):
    return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
printf 'P5\n1 1\n255\n\x80' >"$d/one.pgm"
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
if (( mem_kib * 1024 < 46340 * 46340 * 4 * 4 )); then
  "$HETPIPE" image --device cpu --ops resize:46340x46340 -o "$d/xbig" "$d/e11.png" "$d/one.pgm" \
    >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 && -f "$d/xbig/one.pgm" && $(head -1 "$tmp/err") == "hetpipe: $d/e11.png: its 46340x46340 result needs "*", more than this machine's memory" ]] &&
    ok || bad "a result past the machine's memory: rc $rc: $(cat "$tmp/err")"
else
  echo "SKIP: a result past this machine's memory ($mem_kib KiB) would be 34 GB"
fi
if sanitized; then
  echo "SKIP: a sanitizer's build cannot run under ulimit -v"
else
  (
    ulimit -v 3000000
    "$HETPIPE" image --device cpu --ops resize:2000 -o "$d/xlim" "$d/e11.png" "$d/one.pgm" >"$tmp/out" 2>"$tmp/err"
  )
  rc=$?
  [[ $rc -eq 1 && -f "$d/xlim/one.pgm" && $(head -1 "$tmp/err") == "hetpipe: $d/e11.png: not enough memory for this image and its result" ]] &&
    ok || bad "a result past a memory limit: rc $rc: $(cat "$tmp/err")"
fi
rm -rf "$d/xbig" "$d/xlim" "$d/e11.png" "$d/one.pgm"
# -r does not follow links to folders (a link up to its own folder was an endless walk).
mkdir -p "$d/loop/s"
cp "$d/in/rgb-000000.ppm" "$d/loop/a.ppm"
cp "$d/in/rgb-000000.ppm" "$d/loop/s/b.ppm"
ln -s .. "$d/loop/s/up"
timeout -k 1 30 "$HETPIPE" image -r --ops invert -o "$d/loop-out" "$d/loop" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 0 && $(cd "$d/loop-out" && find . -type f | sort | tr '\n' ' ') == "./a.ppm ./s/b.ppm " ]] && ok ||
  bad "-r with a link to a folder: rc $rc: $(cd "$d/loop-out" 2>/dev/null && find . | head -5) $(cat "$tmp/err")"
rm -rf "$d/loop" "$d/loop-out"
# A folder the walk cannot open: reported in its place, the other images written (as an
# unprivileged user when we are root, who opens anything).
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null; then
  mkdir -p "$d/lk/locked" "$d/lk-out"
  cp "$d/in/rgb-000000.ppm" "$d/lk/a.ppm"
  cp "$d/in/rgb-000000.ppm" "$d/lk/locked/b.ppm"
  chmod 755 "$tmp" "$d" "$d/lk"
  chmod 644 "$d/lk/a.ppm"
  chmod 777 "$d/lk-out"
  chmod 000 "$d/lk/locked"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$HETPIPE" image -r --ops invert \
    -o "$d/lk-out/o" "$d/lk" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 && -f "$d/lk-out/o/a.ppm" && $(cat "$tmp/err") == "hetpipe: $d/lk/locked: permission denied
hetpipe: 1 folder could not be read; the 1 image found was written" ]] &&
    ok || bad "-r past a locked folder: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  # --json counts the images alone, the folder apart.
  setpriv --reuid=65534 --regid=65534 --clear-groups "$HETPIPE" image -r --json --ops invert \
    -o "$d/lk-out/o" "$d/lk" "$d/nope.ppm" >"$tmp/out" 2>"$tmp/err"
  python3 -c 'import json, sys; j = json.load(sys.stdin); sys.exit(not (j["images"] == 2 and j["written"] == 1 and j["folders_unread"] == 1 and len(j["failed"]) == 2))' <"$tmp/out" &&
    ok || bad "-r --json past a locked folder: $(cat "$tmp/out" "$tmp/err")"
  chmod 755 "$d/lk/locked"
  rm -rf "$d/lk" "$d/lk-out"
fi
expect_error "two inputs, one output" 2 "would both be written" -- image --ops gray -o "$d/x" "$d/in/rgb-000000.ppm" "$d/in/../in/rgb-000000.ppm"
expect_error "one input twice" 2 "image: $d/in/rgb-000000.ppm is given twice" -- image --ops gray -o "$d/x" "$d/in/rgb-000000.ppm" "$d/in/rgb-000000.ppm"
expect_error "output over its input" 2 "is its own input" -- image --ops gray -o "$d/in" "$d/in/rgb-000000.ppm"
# An output that is another input: its commit would replace that input before it is read (the
# folder's p/sub/a.ppm goes to out/sub/a.ppm, the second input, whose own output out/a.ppm then
# came out of the first image's pixels, exit 0).
mkdir -p "$d/over/p/sub" "$d/over/out/sub"
cp "$d/in/rgb-000000.ppm" "$d/over/p/sub/a.ppm" && cp "$d/in/rgb-000001.ppm" "$d/over/out/sub/a.ppm"
expect_error "output over another input" 2 "is the input $d/over/out/sub/a.ppm" -- image -r --ops invert -o "$d/over/out" "$d/over/p" "$d/over/out/sub/a.ppm"
cmp -s "$d/over/out/sub/a.ppm" "$d/in/rgb-000001.ppm" && ok || bad "output over another input: the input was changed"
expect_error "bad png level" 2 "compression level" -- image --ops gray --png-level 12 -o "$d/x" "$d/in/rgb-000000.ppm"
expect_error "gen-images size" 2 "WIDTHxHEIGHT" -- gen-images --size 10 -o "$d/x"
expect_error "unknown --format" 2 "--format: jpg" -- image --ops gray --format jpg -o "$d/x" "$d/in/rgb-000000.ppm"
expect_error "no --ops" 2 "--ops is required" -- image -o "$d/x" "$d/in/rgb-000000.ppm"
if ! "$HETPIPE" info --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["devices"] else 1)'; then
  expect_error "--device gpu without a GPU" 1 "--device gpu: " -- image --device gpu --ops gray -o "$d/x" "$d/in/rgb-000000.ppm"
fi
[[ ! -e $d/x ]] && ok || bad "a refused job created $d/x"

echo "image CLI: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
