#!/usr/bin/env bash
# `hetpipe count` end to end: wc's numbers and layout (one file, several, one column, standard
# input, a total), characters of UTF-8 text, words as Python's bytes.split() on any bytes, every chunk size and device
# mode, -r, --json, and bad paths reported in their place. HETPIPE names the binary.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

d=$tmp/data
mkdir -p "$d/sub"
python3 - "$d" <<'PY'
import os, random, sys
r = random.Random(7)
d = sys.argv[1]
words = ["alpha", "beta", "gamma", "delta", "x", "longerwordthanthe4kboundary" * 3]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += r.choice(words).encode() + r.choice([b" ", b"  ", b"\t", b"\n", b"\n\n", b" \r\n"])
    return bytes(out[:n])
for name, n in {"empty": 0, "one": 1, "small": 300, "k4": 4096, "odd": 70001,
                "m3": 3 * 2**20 + 333, "sub/a": 5000, "sub/name with space": 10}.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(text(n))
# Any byte at all: NUL, DEL, 0x80..0xFF count as word bytes here (GNU wc skips unprintable ones,
# so it is checked against Python's split instead).
with open(os.path.join(d, "binary"), "wb") as f:
    f.write(bytes(r.getrandbits(8) for _ in range(200000)))
PY
files=("$d/empty" "$d/one" "$d/small" "$d/k4" "$d/odd" "$d/m3")

# The numbers and the layout of `wc` (LC_ALL=C), for every chunk size and mode.
LC_ALL=C wc "${files[@]}" >"$tmp/ref"
for c in 4K 8K 64K 1M 16M; do
  for dev in cpu auto; do
    "$HETPIPE" count --chunk-size "$c" --device "$dev" "${files[@]}" >"$tmp/got" 2>"$tmp/err" &&
      cmp -s "$tmp/ref" "$tmp/got" && ok ||
      bad "count --chunk-size $c --device $dev differs from wc: $(diff "$tmp/ref" "$tmp/got" | head -3) $(cat "$tmp/err")"
  done
done
# One file (width 1), one column of several files, standard input (width 7, no name), and "-".
for args in "$d/m3" "-l $d/m3" "-w ${files[*]}" "-c -l ${files[*]}" "-lwc $d/small $d/odd"; do
  # shellcheck disable=SC2086
  LC_ALL=C wc $args >"$tmp/ref"
  # shellcheck disable=SC2086
  "$HETPIPE" count $args >"$tmp/got" 2>"$tmp/err" && cmp -s "$tmp/ref" "$tmp/got" && ok ||
    bad "count $args differs from wc: $(diff "$tmp/ref" "$tmp/got" | head -3) $(cat "$tmp/err")"
done
LC_ALL=C wc <"$d/m3" >"$tmp/ref"
cat "$d/m3" | "$HETPIPE" count >"$tmp/got" && cmp -s "$tmp/ref" "$tmp/got" && ok ||
  bad "count of a pipe differs from wc: $(cat "$tmp/ref") / $(cat "$tmp/got")"
cat "$d/m3" | LC_ALL=C wc - "$d/small" >"$tmp/ref"
cat "$d/m3" | "$HETPIPE" count - "$d/small" >"$tmp/got" && cmp -s "$tmp/ref" "$tmp/got" && ok ||
  bad "count - FILE differs from wc: $(diff "$tmp/ref" "$tmp/got" | head -3)"

# -m: the characters of UTF-8 text, as wc -m counts them in a UTF-8 locale (and Python's len).
python3 -c 'import random; r = random.Random(4); w = ["h\u00e9llo", "\u20ac", "\U0001f642", "plain", "\u3042\u3044"]
open("'"$d"'/utf8.txt", "w", encoding="utf-8").write("".join(r.choice(w) + r.choice([" ", "\n"]) for _ in range(200000)))'
if locale -a 2>/dev/null | grep -qi '^c\.utf-\?8$'; then
  LC_ALL=C.UTF-8 wc -lwmc "$d/utf8.txt" >"$tmp/ref"
  for c in 4K 64K; do
    "$HETPIPE" count -lwmc --chunk-size "$c" "$d/utf8.txt" >"$tmp/got" && cmp -s "$tmp/ref" "$tmp/got" && ok ||
      bad "count -lwmc (chunk $c) differs from wc: $(cat "$tmp/ref") / $(cat "$tmp/got")"
  done
fi
want=$(python3 -c 'import sys; print(len(open(sys.argv[1], encoding="utf-8").read()))' "$d/utf8.txt")
got=$("$HETPIPE" count -m --chunk-size 4K "$d/utf8.txt" | awk '{print $1}')
[[ $got == "$want" ]] && ok || bad "count -m: $got, Python's len: $want"

# Any bytes: words as Python's bytes.split().
want=$(python3 -c 'import sys; b = open(sys.argv[1], "rb").read(); print(b.count(b"\n"), len(b.split()), len(b))' "$d/binary")
for c in 4K 64K 1M; do
  got=$("$HETPIPE" count --chunk-size "$c" "$d/binary" | awk '{print $1, $2, $3}')
  [[ $got == "$want" ]] && ok || bad "count of random bytes, chunk $c: $got, expected $want"
done

# -r walks folders, sorted; a folder without -r, and a missing file, are reported in their place
# while the others are counted, and the status is 1.
LC_ALL=C wc "$d/sub/a" "$d/sub/name with space" >"$tmp/ref"
"$HETPIPE" count -r "$d/sub" >"$tmp/got" && cmp -s "$tmp/ref" "$tmp/got" && ok ||
  bad "count -r: $(diff "$tmp/ref" "$tmp/got" | head -3)"
"$HETPIPE" count "$d/small" "$d/sub" "$d/missing" "$d/one" >"$tmp/got" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 ]] && ok || bad "count with bad paths: exit $rc"
grep -q "^hetpipe: $d/sub: is a directory" "$tmp/err" && grep -q "^hetpipe: $d/missing: no such file" "$tmp/err" &&
  [[ $(wc -l <"$tmp/err") -eq 2 ]] && ok || bad "count with bad paths: stderr $(cat "$tmp/err")"
LC_ALL=C wc "$d/small" "$d/one" | sed '$d' >"$tmp/ref"
head -2 "$tmp/got" | cmp -s "$tmp/ref" - && grep -q ' total$' "$tmp/got" && ok ||
  bad "count with bad paths: stdout $(cat "$tmp/got")"

# A file that opens and fails at its first read (/proc/self/mem at offset 0: EIO) fails in the job:
# it is reported in its place and the job runs again without it, the others counted. Twice, and
# with a stream among the inputs (checked before the job then, as a stream cannot be read again).
"$HETPIPE" count "$d/small" /proc/self/mem "$d/one" /proc/self/mem >"$tmp/got" 2>"$tmp/err"
rc=$?
LC_ALL=C wc "$d/small" "$d/one" >"$tmp/ref"
[[ $rc -eq 1 ]] && cmp -s "$tmp/ref" "$tmp/got" && [[ $(grep -c '^hetpipe: /proc/self/mem: ' "$tmp/err") -eq 2 ]] &&
  [[ $(wc -l <"$tmp/err") -eq 2 ]] && ok || bad "count with a file failing in the job (exit $rc): $(cat "$tmp/got" "$tmp/err")"
"$HETPIPE" count - /proc/self/mem <"$d/small" >"$tmp/got" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 ]] && grep -q "^hetpipe: /proc/self/mem: " "$tmp/err" && [[ $(head -1 "$tmp/got" | awk '{print $3}') == 300 ]] && ok ||
  bad "count - with a failing file (exit $rc): $(cat "$tmp/got" "$tmp/err")"

# --json: an object per path, an error in place of a bad one.
"$HETPIPE" count --json "$d/small" "$d/missing" >"$tmp/got" 2>"$tmp/err"
rc=$?
python3 - "$tmp/got" "$d/small" "$d/missing" <<'PY' && [[ $rc -eq 1 ]] && ok || bad "count --json (exit $rc): $(cat "$tmp/got")"
import json, sys
doc = json.load(open(sys.argv[1]))
b = open(sys.argv[2], "rb").read()
assert doc[0] == {"file": sys.argv[2], "lines": b.count(b"\n"), "words": len(b.split()),
                  "chars": sum(1 for x in b if not 0x80 <= x < 0xC0), "bytes": len(b)}, doc[0]
assert doc[1]["file"] == sys.argv[3] and "no such file" in doc[1]["error"], doc[1]
PY

# --device gpu: wc's numbers where a GPU is usable, else the one-line reason and exit 1.
LC_ALL=C wc "${files[@]}" >"$tmp/ref"
if "$HETPIPE" count --device gpu --chunk-size 64K "${files[@]}" >"$tmp/got" 2>"$tmp/err"; then
  cmp -s "$tmp/ref" "$tmp/got" && ok || bad "count --device gpu differs from wc: $(diff "$tmp/ref" "$tmp/got" | head -3)"
else
  expect_error "count --device gpu without a GPU" 1 "--device gpu: \(no usable CUDA device\|this hetpipe was built without CUDA\)" -- count --device gpu "$d/small"
fi

echo "count: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
