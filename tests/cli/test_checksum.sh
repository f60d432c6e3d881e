#!/usr/bin/env bash
# `hetpipe checksum` end to end: digests equal b3sum and zlib, stdin, -r, --check (OK, FAILED,
# missing, malformed; --quiet, --status, --ignore-missing), --json, keyed, derived-key and
# extended BLAKE3, --no-names and --raw, bad input. HETPIPE names the binary.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

d=$tmp/data
mkdir -p "$d/sub/deeper"
python3 - "$d" <<'PY'
import os, random, sys
r = random.Random(5)
d = sys.argv[1]
sizes = {"empty": 0, "one": 1, "k1": 1024, "k1p": 1025, "odd": 70001, "m3": 3 * 2**20 + 333,
         "sub/a": 4096, "sub/deeper/b": 5000, "sub/name with space": 10}
for name, n in sizes.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(r.getrandbits(8) for _ in range(n)) if n < 100000 else os.urandom(n))
PY
files=("$d/empty" "$d/one" "$d/k1" "$d/k1p" "$d/odd" "$d/m3")

# BLAKE3 equals b3sum, for every chunk size (4K is the smallest; 16M is larger than every file).
if command -v b3sum >/dev/null; then
  b3sum "${files[@]}" >"$tmp/ref"
  for c in 4K 8K 64K 1M 16M; do
    "$HETPIPE" checksum --chunk-size "$c" "${files[@]}" >"$tmp/got" 2>"$tmp/err" &&
      cmp -s "$tmp/ref" "$tmp/got" && ok || bad "blake3 --chunk-size $c differs from b3sum: $(diff "$tmp/ref" "$tmp/got" | head -3) $(cat "$tmp/err")"
  done
  b3sum --length 100 "$d/m3" >"$tmp/ref"
  "$HETPIPE" checksum --chunk-size 64K --length 100 "$d/m3" >"$tmp/got" && cmp -s "$tmp/ref" "$tmp/got" &&
    ok || bad "--length 100 differs from b3sum"
  head -c 32 "$d/m3" >"$tmp/key"
  b3sum --keyed "$d/odd" <"$tmp/key" >"$tmp/ref"
  "$HETPIPE" checksum --keyed "$tmp/key" --chunk-size 8K "$d/odd" >"$tmp/got" && cmp -s "$tmp/ref" "$tmp/got" &&
    ok || bad "--keyed differs from b3sum"
  # --keyed - reads the key from standard input, as b3sum --keyed does.
  "$HETPIPE" checksum --keyed - "$d/odd" <"$tmp/key" >"$tmp/got" && cmp -s "$tmp/ref" "$tmp/got" &&
    ok || bad "--keyed - differs from b3sum --keyed"
  # b3sum's other mode and output forms: --derive-key (an empty context too), --no-names, --raw.
  for ctx in "hetpipe test 2026-11-27 context" ""; do
    b3sum --derive-key "$ctx" "${files[@]}" >"$tmp/ref"
    "$HETPIPE" checksum --derive-key "$ctx" --chunk-size 4K "${files[@]}" >"$tmp/got" &&
      cmp -s "$tmp/ref" "$tmp/got" && ok || bad "--derive-key '$ctx' differs from b3sum"
  done
  b3sum --no-names --length 40 "${files[@]}" >"$tmp/ref"
  "$HETPIPE" checksum --no-names --length 40 "${files[@]}" >"$tmp/got" &&
    cmp -s "$tmp/ref" "$tmp/got" && ok || bad "--no-names differs from b3sum"
  b3sum --raw --length 77 "$d/m3" >"$tmp/ref"
  "$HETPIPE" checksum --raw --length 77 "$d/m3" >"$tmp/got" &&
    cmp -s "$tmp/ref" "$tmp/got" && ok || bad "--raw differs from b3sum"
  b3sum --raw --derive-key ctx <"$d/odd" >"$tmp/ref"
  "$HETPIPE" checksum --raw --derive-key ctx <"$d/odd" >"$tmp/got" &&
    cmp -s "$tmp/ref" "$tmp/got" && ok || bad "--raw --derive-key of stdin differs from b3sum"
else
  echo "SKIP: b3sum not installed; BLAKE3 compared with the official vectors in test_host only" >&2
fi

# Whoever reads the chunks (lanes from mappings, lanes into slots, libuv's threads), the same
# digests; m3 is large enough for its chunks of 256K and 1M to be mapped.
for a in blake3 crc32c; do
  "$HETPIPE" checksum -a $a --device cpu "${files[@]}" >"$tmp/ref" || bad "$a default reads"
  for r in map lane pool; do
    for c in 256K 1M; do
      "$HETPIPE" checksum -a $a --device cpu --reads $r --chunk-size $c "${files[@]}" >"$tmp/got" &&
        cmp -s "$tmp/ref" "$tmp/got" && ok || bad "$a --reads $r --chunk-size $c differs"
    done
  done
done
# -v counts them: m3's 12 chunks of 256 KiB (its last, of 333 bytes, is read by the reader).
"$HETPIPE" checksum -v --device cpu --reads map --chunk-size 256K "$d/m3" 2>"$tmp/err" >/dev/null
n=0
for x in $(grep -o '([0-9]* mapped)' "$tmp/err" | tr -dc '0-9\n'); do n=$((n + x)); done
((n == 12)) && ok || bad "--reads map -v: $(grep lane "$tmp/err")"
expect_error "unknown --reads" 2 "reads" -- checksum --reads mmap "$d/one"
# --chunk-size in 4K..1G as for every command, checked before checksum rounds it to a power of
# two (5000 runs as 4K: the same digests).
for c in 1 1K 4095 1025M 2G; do
  expect_error "--chunk-size $c" 2 "--chunk-size must be between 4K and 1G" -- checksum --chunk-size $c "$d/one"
done
if command -v b3sum >/dev/null; then
  b3sum "${files[@]}" >"$tmp/ref"
  "$HETPIPE" checksum --chunk-size 5000 "${files[@]}" >"$tmp/got" && cmp -s "$tmp/ref" "$tmp/got" &&
    ok || bad "--chunk-size 5000 differs from b3sum"
fi

# Every BLAKE3 build this CPU runs (HETPIPE_BLAKE3, which `info` lists) gives the same digests;
# a name it does not run is an error before the job.
"$HETPIPE" checksum --chunk-size 64K "${files[@]}" >"$tmp/ref" || bad "blake3 default build"
builds=$("$HETPIPE" info --json | python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)["blake3_builds"]))')
[[ $builds == *baseline* ]] && ok || bad "info lists no BLAKE3 builds: '$builds'"
for b in $builds; do
  HETPIPE_BLAKE3=$b "$HETPIPE" checksum --chunk-size 64K "${files[@]}" >"$tmp/got" &&
    cmp -s "$tmp/ref" "$tmp/got" && ok || bad "HETPIPE_BLAKE3=$b differs"
  HETPIPE_BLAKE3=$b "$HETPIPE" info | grep -q "BLAKE3 build $b " && ok || bad "info under HETPIPE_BLAKE3=$b"
done
HETPIPE_BLAKE3=sse9 expect_error "unknown BLAKE3 build" 2 "HETPIPE_BLAKE3: 'sse9' is not a BLAKE3 build this CPU runs (.*baseline)" -- checksum "$d/one"

# CRC32 equals zlib's crc32(), CRC32C the RFC 3720 check value.
python3 - "${files[@]}" >"$tmp/ref" <<'PY'
import sys, zlib
for f in sys.argv[1:]:
    print(f"{zlib.crc32(open(f, 'rb').read()):08x}  {f}")
PY
for c in 4K 1M; do
  "$HETPIPE" checksum -a crc32 --chunk-size "$c" "${files[@]}" >"$tmp/got" && cmp -s "$tmp/ref" "$tmp/got" &&
    ok || bad "crc32 --chunk-size $c differs from zlib"
done
printf 123456789 >"$d/check9"
[[ $("$HETPIPE" checksum -a crc32c "$d/check9") == "e3069283  $d/check9" ]] && ok || bad "crc32c check value"

# Standard input: named "-", same digest.
[[ $(cat "$d/m3" | "$HETPIPE" checksum --chunk-size 64K) == "$("$HETPIPE" checksum "$d/m3" | cut -c1-64)  -" ]] &&
  ok || bad "stdin digest"

# -r walks folders in sorted order; a folder without -r is an error.
"$HETPIPE" checksum -r "$d/sub" >"$tmp/got" &&
  [[ $(cut -c67- "$tmp/got" | tr '\n' '|') == "$d/sub/a|$d/sub/deeper/b|$d/sub/name with space|" ]] &&
  ok || bad "-r order: $(cat "$tmp/got")"
expect_error "folder without -r" 1 "sub: is a directory" -- checksum "$d/sub"
expect_error "missing file" 1 "nope: no such file or directory" -- checksum "$d/nope"
head -c 31 "$d/m3" >"$tmp/shortkey"
expect_error "short key file" 1 "shortkey: .*exactly 32 bytes" -- checksum --keyed "$tmp/shortkey" "$d/one"
expect_error "--length with crc" 2 "BLAKE3 only" -- checksum -a crc32 --length 8 "$d/one"
# 32, the default length, was taken for no --length at all.
expect_error "--length 32 with crc" 2 "BLAKE3 only" -- checksum -a crc32 -l 32 "$d/one"
expect_error "-r with --check" 2 "--recursive excludes --check" -- checksum -r --check "$d/one"
expect_error "--derive-key with crc" 2 "--derive-key is for BLAKE3 only" -- checksum -a crc32c --derive-key c "$d/one"
expect_error "--derive-key with --keyed" 2 "excludes" -- checksum --derive-key c --keyed "$tmp/shortkey" "$d/one"
expect_error "--raw of two inputs" 2 "--raw writes one digest: give one input, not 2" -- checksum --raw "$d/one" "$d/k1"
expect_error "--raw of a folder's files" 2 "--raw writes one digest" -- checksum --raw -r "$d/sub"
expect_error "--raw with --check" 2 "--check excludes --raw" -- checksum --raw --check "$d/one"
expect_error "--no-names with --json" 2 "--no-names excludes --json" -- checksum --no-names --json "$d/one"

# An unreadable file (as an unprivileged user when we are root, who reads anything).
printf 'abcd' >"$tmp/secret"
chmod 000 "$tmp/secret"
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null; then
  chmod 755 "$tmp"
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$HETPIPE" checksum "$tmp/secret" 2>&1 >/dev/null)
  rc=$?
  [[ $rc -eq 1 && "$out" == "hetpipe: $tmp/secret: permission denied" ]] && ok || bad "unreadable: rc $rc: $out"
  # Two unreadable files among readable ones: both reported (the first fails the job, the rest are
  # then opened ahead of the one run more), the others' digests printed in order.
  cp -p "$tmp/secret" "$tmp/secret2"
  chmod 644 "$d/one" "$d/odd"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$HETPIPE" checksum -a crc32c "$d/one" "$tmp/secret" \
    "$d/odd" "$tmp/secret2" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  "$HETPIPE" checksum -a crc32c "$d/one" "$d/odd" >"$tmp/ref"
  [[ $rc -eq 1 ]] && cmp -s "$tmp/ref" "$tmp/out" && [[ $(cat "$tmp/err") == "hetpipe: $tmp/secret: permission denied
hetpipe: $tmp/secret2: permission denied" ]] && ok || bad "two unreadable among others: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  # A folder the walk cannot open (-r): reported in its place, and the walk goes on past it (the
  # whole command used to stop there, with no digest printed).
  mkdir -p "$tmp/tree/a" "$tmp/tree/locked"
  printf x >"$tmp/tree/a/f"
  printf y >"$tmp/tree/locked/g"
  printf z >"$tmp/tree/zz"
  chmod 755 "$tmp/tree" "$tmp/tree/a"
  chmod 644 "$tmp/tree/a/f" "$tmp/tree/zz"
  chmod 000 "$tmp/tree/locked"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$HETPIPE" checksum -r "$tmp/tree" "$d/one" \
    >"$tmp/out" 2>"$tmp/err"
  rc=$?
  "$HETPIPE" checksum "$tmp/tree/a/f" "$tmp/tree/zz" "$d/one" >"$tmp/ref"
  [[ $rc -eq 1 && $(cat "$tmp/err") == "hetpipe: $tmp/tree/locked: permission denied" ]] &&
    cmp -s "$tmp/ref" "$tmp/out" && ok || bad "-r past a locked folder: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$HETPIPE" checksum -r --json "$tmp/tree" \
    >"$tmp/out" 2>/dev/null
  python3 - "$tmp/out" "$tmp/tree" <<'PY' && ok || bad "-r --json past a locked folder: $(cat "$tmp/out")"
import json, sys
got = json.load(open(sys.argv[1]))
t = sys.argv[2]
assert [e["file"] for e in got] == [t + "/a/f", t + "/locked", t + "/zz"], got
assert got[1]["error"] == "permission denied" and "digest" not in got[1], got[1]
PY
  chmod 755 "$tmp/tree/locked"
elif [[ $(id -u) -ne 0 ]]; then
  expect_error "unreadable" 1 "secret: permission denied" -- checksum "$tmp/secret"
fi

# --json
"$HETPIPE" checksum --json -a crc32c "$d/check9" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r == [{"file": sys.argv[1], "algorithm": "crc32c", "keyed": False, "digest": "e3069283", "bytes": 9}], r
' "$d/check9" && ok || bad "--json"
"$HETPIPE" checksum --json --derive-key "my context" "$d/check9" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert len(r) == 1 and r[0]["derive_key_context"] == "my context" and not r[0]["keyed"], r
assert len(r[0]["digest"]) == 64, r
' && ok || bad "--json --derive-key"

# --check: all OK, then one changed, one missing, one malformed line.
(cd "$d" && "$HETPIPE" checksum one odd m3 sub/a >"$tmp/sums") || bad "writing sums"
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums") >"$tmp/out" 2>"$tmp/err" &&
  [[ $(cat "$tmp/out") == $'one: OK\nodd: OK\nm3: OK\nsub/a: OK' ]] && ok || bad "--check all OK: $(cat "$tmp/out" "$tmp/err")"
cp "$d/odd" "$d/odd2"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[500] ^= 1; open(sys.argv[1], "wb").write(b)' "$d/odd2"
sed -e 's# odd$# odd2#' -e 's# sub/a$# gone#' "$tmp/sums" >"$tmp/sums2"
echo "not a checksum line" >>"$tmp/sums2"
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums2") >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/out") == $'one: OK\nodd2: FAILED\nm3: OK\ngone: FAILED open or read' ]] &&
  grep -q "sums2:5: not a blake3 checksum line" "$tmp/err" && grep -q "gone: no such file" "$tmp/err" &&
  grep -q "1 computed checksum did NOT match" "$tmp/err" && ok ||
  bad "--check failures: rc $rc: $(cat "$tmp/out" "$tmp/err")"
# As sha256sum -c takes them: --quiet drops the OK lines; --status prints nothing on stdout and
# no WARNING summary, the exit status tells; --ignore-missing passes over files that do not exist
# (a changed one still fails), and fails when no file is left to verify.
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums2" --quiet) >"$tmp/out" 2>/dev/null
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/out") == $'odd2: FAILED\ngone: FAILED open or read' ]] && ok ||
  bad "--check --quiet: rc $rc: $(cat "$tmp/out")"
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums2" --status) >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && ! -s "$tmp/out" ]] && ! grep -q WARNING "$tmp/err" && ok ||
  bad "--check --status, failures: rc $rc: $(cat "$tmp/out" "$tmp/err")"
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums" --status) >"$tmp/out" 2>"$tmp/err" &&
  [[ ! -s "$tmp/out" && ! -s "$tmp/err" ]] && ok || bad "--check --status, all OK: $(cat "$tmp/out" "$tmp/err")"
# --status writes nothing on stdout, which may then be closed (as with sha256sum -c --status).
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums" --status >&-) 2>"$tmp/err" && [[ ! -s "$tmp/err" ]] &&
  ok || bad "--check --status with stdout closed: $(cat "$tmp/err")"
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums2" --status >&-) 2>"$tmp/err"
[[ $? -eq 1 ]] && ! grep -q "standard output" "$tmp/err" && ok ||
  bad "--check --status, failures, with stdout closed: $(cat "$tmp/err")"
sed -e 's# odd$# gone#' "$tmp/sums" >"$tmp/sums5"
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums5" --ignore-missing) >"$tmp/out" 2>"$tmp/err" &&
  [[ $(cat "$tmp/out") == $'one: OK\nm3: OK\nsub/a: OK' && ! -s "$tmp/err" ]] && ok ||
  bad "--check --ignore-missing: $(cat "$tmp/out" "$tmp/err")"
head -4 "$tmp/sums2" >"$tmp/sums6"  # one, odd2 (changed), m3, gone
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums6" --ignore-missing) >"$tmp/out" 2>/dev/null
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/out") == $'one: OK\nodd2: FAILED\nm3: OK' ]] && ok ||
  bad "--check --ignore-missing with a changed file: rc $rc: $(cat "$tmp/out")"
grep ' gone$' "$tmp/sums5" >"$tmp/sums7"
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums7" --ignore-missing) >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && ! -s "$tmp/out" ]] && grep -q "sums7: no file was verified" "$tmp/err" && ok ||
  bad "--check --ignore-missing, none left: rc $rc: $(cat "$tmp/out" "$tmp/err")"
# ... and under --status, say nothing of it: only the exit status.
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums7" --ignore-missing --status) >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && ! -s "$tmp/out" && ! -s "$tmp/err" ]] && ok ||
  bad "--check --ignore-missing --status, none left: rc $rc: $(cat "$tmp/out" "$tmp/err")"
# -c is a switch, as sha256sum's: the files given are the lists, none is standard input, and
# options may follow it ("-c --status" once took --status for the list's name).
(cd "$d" && "$HETPIPE" checksum -c --status <"$tmp/sums") >"$tmp/out" 2>"$tmp/err" &&
  [[ ! -s "$tmp/out" && ! -s "$tmp/err" ]] && ok || bad "-c --status from stdin: $(cat "$tmp/out" "$tmp/err")"
(cd "$d" && "$HETPIPE" checksum -c <"$tmp/sums2") >"$tmp/out" 2>/dev/null
[[ $? -eq 1 && $(sed -n 2p "$tmp/out") == "odd2: FAILED" ]] && ok || bad "-c from stdin, failures: $(cat "$tmp/out")"
# Several lists, each in turn; one that cannot be read is reported and the next still checked.
(cd "$d" && "$HETPIPE" checksum -c "$tmp/sums5" "$tmp/no-such-list" "$tmp/sums") >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/out") == $'one: OK
gone: FAILED open or read
m3: OK
sub/a: OK
one: OK
odd: OK
m3: OK
sub/a: OK' ]] &&
  grep -q "^hetpipe: $tmp/no-such-list: no such file" "$tmp/err" && ok ||
  bad "-c with three lists: rc $rc: $(cat "$tmp/out" "$tmp/err")"
(cd "$d" && "$HETPIPE" checksum -c --quiet "$tmp/sums" "$tmp/sums") >"$tmp/out" 2>"$tmp/err" &&
  [[ ! -s "$tmp/out" && ! -s "$tmp/err" ]] && ok || bad "-c --quiet, two good lists: $(cat "$tmp/out" "$tmp/err")"
# A blank line of a CRLF file is blank; a name holding a NUL byte is no name (b3sum refuses it).
grep ' one$' "$tmp/sums" | sed 's/$/\r/' >"$tmp/crlf"
printf '\r\n' >>"$tmp/crlf"
(cd "$d" && "$HETPIPE" checksum --check "$tmp/crlf") >"$tmp/out" 2>"$tmp/err" &&
  [[ $(cat "$tmp/out") == "one: OK" && ! -s "$tmp/err" ]] && ok || bad "CRLF blank line: $(cat "$tmp/out" "$tmp/err")"
grep ' one$' "$tmp/sums" >"$tmp/nul"
printf '%s  one\0junk\n' "$(cut -c1-64 "$tmp/nul")" >>"$tmp/nul"
(cd "$d" && "$HETPIPE" checksum --check "$tmp/nul") >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/out") == "one: OK" ]] && grep -q "nul:2: not a blake3 checksum line" "$tmp/err" &&
  ok || bad "NUL in a name: rc $rc: $(cat -v "$tmp/out" "$tmp/err")"
# An escaped line with an escape b3sum and sha256sum do not write is named for what it is.
printf '\\%s  a\\qb\n' "$(grep ' one$' "$tmp/sums" | cut -c1-64)" >"$tmp/esc"
"$HETPIPE" checksum --check "$tmp/esc" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && ! -s "$tmp/out" ]] && grep -q "esc:1: a backslash escape in the name other than" "$tmp/err" &&
  ok || bad "bad escape: rc $rc: $(cat "$tmp/out" "$tmp/err")"
# "-" is standard input: not readable when it is the sum file itself, or closed.
printf '%s  -\n' "$(grep ' one$' "$tmp/sums" | cut -c1-64)" >"$tmp/dash"
"$HETPIPE" checksum --check - <"$tmp/dash" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/out") == "-: FAILED open or read" ]] &&
  grep -q "hetpipe: -: standard input is the sum file" "$tmp/err" && ok ||
  bad "--check - listing -: rc $rc: $(cat "$tmp/out" "$tmp/err")"
"$HETPIPE" checksum --check "$tmp/dash" <&- >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/out") == "-: FAILED open or read" ]] &&
  grep -q "hetpipe: -: standard input is closed" "$tmp/err" && ok ||
  bad "--check listing - with stdin closed: rc $rc: $(cat "$tmp/out" "$tmp/err")"
"$HETPIPE" checksum --check "$tmp/dash" <"$d/one" >"$tmp/out" 2>"$tmp/err" &&
  [[ $(cat "$tmp/out") == "-: OK" ]] && ok || bad "--check listing -: $(cat "$tmp/out" "$tmp/err")"
# The options are checked first, as without --check, whatever the sum file holds.
expect_error "--check with --length 0" 2 "--length must be between 1 and" -- checksum --length 0 --check "$tmp/sums"
expect_error "--check, -a crc32 with --derive-key" 2 "--derive-key is for BLAKE3 only" -- checksum -a crc32 --derive-key x --check "$tmp/sums7"
expect_error "--status without --check" 2 "--status requires --check" -- checksum --status "$d/one"
expect_error "--ignore-missing without --check" 2 "--ignore-missing requires --check" -- checksum --ignore-missing "$d/one"
expect_error "--quiet without --check" 2 "--quiet requires --check" -- checksum --quiet "$d/one"

# A folder listed in SUMFILE is a failure like a missing file; the others are still checked (it
# once ended the whole check with "is a directory").
sed -n '1p' "$tmp/sums" | sed 's#  one$#  sub#' >"$tmp/sums3"
sed -n '1p' "$tmp/sums" >>"$tmp/sums3"
(cd "$d" && "$HETPIPE" checksum --check "$tmp/sums3") >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/out") == $'sub: FAILED open or read\none: OK' ]] && grep -q "sub: is a directory" "$tmp/err" &&
  ok || bad "--check with a folder: rc $rc: $(cat "$tmp/out" "$tmp/err")"

# A name with a newline and a backslash: escaped as sha256sum does, in the sums and in --check.
nl=$'new\nline\\x'
printf 'data' >"$d/$nl"
(cd "$d" && "$HETPIPE" checksum -a crc32 "$nl") >"$tmp/sums4" &&
  [[ $(cat "$tmp/sums4") == '\'"$(printf data | python3 -c 'import sys, zlib; print(f"{zlib.crc32(sys.stdin.buffer.read()):08x}")')"'  new\nline\\x' ]] &&
  ok || bad "escaped sum line: $(cat "$tmp/sums4")"
(cd "$d" && "$HETPIPE" checksum -a crc32 --check "$tmp/sums4") >"$tmp/out" 2>"$tmp/err" &&
  [[ $(cat "$tmp/out") == '\new\nline\\x: OK' ]] && ok || bad "escaped --check: $(cat "$tmp/out" "$tmp/err")"
rm -f "$d/$nl"
# Missing, it is named escaped on stderr too: one line (found by tests/fuzz/cli_mutate.py; the
# error once printed the raw newline, splitting the message in two).
(cd "$d" && "$HETPIPE" checksum -a crc32 --check "$tmp/sums4") >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/out") == '\new\nline\\x: FAILED open or read' &&
  $(head -1 "$tmp/err") == 'hetpipe: \new\nline\\x: no such file or directory' &&
  $(wc -l <"$tmp/err") -eq 2 ]] && ok || bad "escaped name, missing: rc $rc: $(cat "$tmp/out" "$tmp/err")"

# /proc's files state a size of 0 bytes: read to their end (once the digest of nothing).
if [[ -r /proc/version ]]; then
  [[ $("$HETPIPE" checksum -a crc32 /proc/version | cut -c1-8) == $(python3 -c 'import sys, zlib; print("%08x" % zlib.crc32(open(sys.argv[1], "rb").read()))' /proc/version) ]] &&
    ok || bad "/proc/version: $("$HETPIPE" checksum -a crc32 /proc/version 2>&1)"
fi
# So do the cgroup file systems' (v1 and v2): they were taken at their word, the digest of nothing.
# The first file of a cgroup mount's top folder whose content is not empty and stays the same.
cg=$(python3 - <<'PY'
import os
for line in open("/proc/self/mounts"):
    f = line.split()
    if len(f) < 3 or f[2] not in ("cgroup", "cgroup2"):
        continue
    try:
        names = sorted(os.listdir(f[1]))
    except OSError:
        continue
    for n in names:
        p = os.path.join(f[1], n)
        try:
            if not os.path.isfile(p) or os.stat(p).st_size != 0:
                continue
            a = open(p, "rb").read()
            if a and open(p, "rb").read() == a:
                print(p)
                raise SystemExit
        except OSError:
            pass
PY
)
if [[ -n $cg ]]; then
  [[ $("$HETPIPE" checksum -a crc32 "$cg" | cut -c1-8) == $(python3 -c 'import sys, zlib; print("%08x" % zlib.crc32(open(sys.argv[1], "rb").read()))' "$cg") ]] &&
    ok || bad "$cg (cgroup): $("$HETPIPE" checksum -a crc32 "$cg" 2>&1)"
else
  echo "SKIP: no cgroup file with content found (no cgroup mount here)" >&2
fi
# --progress ends with the job's own figures (it left the last update, up to 250 ms old: 0 B here,
# where the job read 2 MiB).
head -c 2097152 /dev/zero >"$tmp/two"
(head -c 1048576 "$tmp/two"; sleep 1; tail -c 1048576 "$tmp/two") |
  "$HETPIPE" checksum --progress - 2>"$tmp/err" >/dev/null &&
  [[ $(tr '\r' '\n' <"$tmp/err" | tail -1) == "hetpipe: 2 MiB  "* ]] && ok ||
  bad "--progress's last line: $(cat -A "$tmp/err")"
# A device that fails when read costs nothing of the pipes beside it (they shared its job, and were
# reported as "cannot be read again"); libuv's "Unknown system error -77" is named.
if [[ -c /dev/net/tun ]] && ! head -c1 /dev/net/tun >/dev/null 2>&1; then
  printf abc | "$HETPIPE" checksum -a crc32 - /dev/net/tun <(printf xyz) "$d/one" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 && $(cut -c1-8 "$tmp/out" | tr '\n' ' ') == "352441c2 $(printf xyz | python3 -c 'import sys, zlib; print("%08x" % zlib.crc32(sys.stdin.buffer.read()))') $("$HETPIPE" checksum -a crc32 "$d/one" | cut -c1-8) " &&
    $(cat "$tmp/err") == "hetpipe: /dev/net/tun: file descriptor in bad state" ]] && ok ||
    bad "a failing device among pipes: rc $rc: $(cat "$tmp/out" "$tmp/err")"
else
  echo "SKIP: no /dev/net/tun that fails when read: a failing device among pipes is not checked" >&2
fi
# A path that cannot be read does not hide the others' digests, as with b3sum and sha256sum: each
# failure is a line on stderr, the rest printed in order, exit 1 (nothing was printed once).
"$HETPIPE" checksum "$d/one" "$d/nope" "$d/sub" "$d/odd" >"$tmp/out" 2>"$tmp/err"
rc=$?
"$HETPIPE" checksum "$d/one" "$d/odd" >"$tmp/ref"
[[ $rc -eq 1 ]] && cmp -s "$tmp/ref" "$tmp/out" &&
  [[ $(cat "$tmp/err") == "hetpipe: $d/nope: no such file or directory
hetpipe: $d/sub: is a directory (-r walks folders)" ]] && ok ||
  bad "checksum with missing and folder paths: rc $rc: $(cat "$tmp/out" "$tmp/err")"
if command -v b3sum >/dev/null; then
  b3sum "$d/one" "$d/odd" | cmp -s - "$tmp/out" && ok || bad "partial output differs from b3sum"
fi
# Digests come as their files are done: an interrupt keeps the ones printed (all were lost once),
# an empty file's too (it held back every line after it until the job's end).
if truncate -s 100G "$tmp/sparse" 2>/dev/null; then
  : >"$tmp/empty"
  "$HETPIPE" checksum "$d/one" "$tmp/empty" "$tmp/sparse" >"$tmp/out" 2>"$tmp/err" &
  interrupt_job $! 0.5
  rc=$?
  [[ $rc -eq 130 && $(cat "$tmp/out") == "$("$HETPIPE" checksum "$d/one" "$tmp/empty")" ]] && ok ||
    bad "an interrupted job's digests so far: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  # --check the same: each file's line as it is verified, a file that cannot be read in its place
  # (all of them came after the job, the failures first).
  {
    "$HETPIPE" checksum "$d/one" "$tmp/empty"
    printf '%064d  %s\n' 0 "$d/nope" 0 "$tmp/sparse"
  } >"$tmp/sparsesums"
  "$HETPIPE" checksum --check "$tmp/sparsesums" >"$tmp/out" 2>&1 &
  interrupt_job $! 0.5
  rc=$?
  [[ $rc -eq 130 && $(head -4 "$tmp/out") == "$d/one: OK
$tmp/empty: OK
hetpipe: $d/nope: no such file or directory
$d/nope: FAILED open or read" ]] && ok ||
    bad "an interrupted --check's lines so far: rc $rc: $(cat "$tmp/out")"
  rm -f "$tmp/sparse"
fi
# On a terminal the progress line is cleared before each digest (which came after its text, on its
# line, once digests were printed as files ended). A file of 3 GiB of holes lasts past the first
# progress line on a 2-core box; where it does not, there is nothing to clear, and the check holds.
if python3 -c 'import os; os.openpty()' 2>/dev/null && truncate -s 3G "$tmp/holes"; then
  PYTHONPATH=$here python3 - "$HETPIPE" "$d/one" "$tmp/holes" <<'PY' >"$tmp/out" 2>&1 && ok || bad "progress and digests on one terminal: $(cat -A "$tmp/out" | head -c 2000)"
import os, pty, re, sys
from pty_job import wait_exit
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "checksum", sys.argv[2], sys.argv[3], sys.argv[2]])
code, seen = wait_exit(pid, fd, seconds=120)
text = seen.decode(errors="replace")
digests = re.findall(r"[0-9a-f]{64}  ", text)
glued = [l for l in re.split(r"[\r\n]", text) if "GB/s" in l and re.search(r"[0-9a-f]{64}", l)]
print(code, len(digests), glued)
sys.exit(0 if code == 0 and len(digests) == 3 and not glued else 1)
PY
  # --check's lines too.
  "$HETPIPE" checksum "$d/one" "$tmp/holes" "$d/one" >"$tmp/holesums"
  PYTHONPATH=$here python3 - "$HETPIPE" "$tmp/holesums" <<'PY' >"$tmp/out" 2>&1 && ok || bad "progress and --check lines on one terminal: $(cat -A "$tmp/out" | head -c 2000)"
import os, pty, re, sys
from pty_job import wait_exit
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "checksum", "--check", sys.argv[2]])
code, seen = wait_exit(pid, fd, seconds=120)
text = seen.decode(errors="replace")
oks = re.findall(r": OK", text)
glued = [l for l in re.split(r"[\r\n]", text) if "GB/s" in l and ": OK" in l]
print(code, len(oks), glued)
sys.exit(0 if code == 0 and len(oks) == 3 and not glued else 1)
PY
  # Standard output a file, the progress line on a terminal: an error printed mid-job starts its
  # own line (it followed the progress text on its line).
  PYTHONPATH=$here python3 - "$HETPIPE" "$tmp/holes" "$d/nope" "$tmp/sums" <<'PY' >"$tmp/out" 2>&1 && ok || bad "progress and an error on one terminal: $(cat -A "$tmp/out" | head -c 2000)"
import os, pty, re, sys
from pty_job import wait_exit
pid, fd = pty.fork()
if pid == 0:
    os.dup2(os.open(sys.argv[4], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
    os.execv(sys.argv[1], [sys.argv[1], "checksum", sys.argv[2], sys.argv[3]])
code, seen = wait_exit(pid, fd, seconds=120)
text = seen.decode(errors="replace")
lines = re.split(r"[\r\n]", text)
errors = [l for l in lines if "no such file" in l]
glued = [l for l in errors if "GB/s" in l]
print(code, errors, glued)
sys.exit(0 if code == 1 and len(errors) == 1 and not glued else 1)
PY
  rm -f "$tmp/holes" "$tmp/holesums"
fi
# A digest reaches a file within 100 ms of its file's end, not when stdio's buffer fills or at the
# job's end: here the next input is a FIFO that nothing writes yet.
# The file is emptied first: the background job's shell truncates it when it gets to run, and
# until then the loop saw the last test's output (1 run in 8 failed under load).
mkfifo "$tmp/fifo"
: >"$tmp/out"
timeout 60 "$HETPIPE" checksum "$d/one" "$tmp/fifo" >"$tmp/out" 2>"$tmp/err" &
job=$!
for _ in $(seq 100); do
  [[ -s "$tmp/out" ]] && break
  sleep 0.1
done
[[ $(cat "$tmp/out") == "$("$HETPIPE" checksum "$d/one")" ]] && ok ||
  bad "a digest while the next input waits: $(cat "$tmp/out" "$tmp/err")"
timeout 20 sh -c 'printf x >"$1"' sh "$tmp/fifo"
wait $job
[[ $? -eq 0 && $(tail -1 "$tmp/out" | cut -d' ' -f1) == $(printf x | "$HETPIPE" checksum - | cut -d' ' -f1) ]] &&
  ok || bad "digest of the FIFO: $(cat "$tmp/out" "$tmp/err")"
rm -f "$tmp/fifo"
# A --trace that names an input of a later job (standard input runs alone between the files' jobs)
# is refused before the first job writes its trace over it (as it did).
echo precious >"$tmp/keep"
echo x | "$HETPIPE" checksum --trace "$tmp/keep" "$d/one" - "$tmp/keep" >"$tmp/out" 2>"$tmp/err"
[[ $? -eq 2 && $(cat "$tmp/keep") == precious && ! -s "$tmp/out" &&
  $(cat "$tmp/err") == "hetpipe: $tmp/keep: --trace names $tmp/keep, which the job reads"* ]] && ok ||
  bad "--trace over a later job's input: $(cat "$tmp/keep" "$tmp/out" "$tmp/err")"
# One trace holds every job (standard input between the files is a job of its own): it held the
# last job's alone.
printf abc | "$HETPIPE" checksum -a crc32c --trace "$tmp/t.json" "$d/one" - "$d/odd" >"$tmp/out" 2>"$tmp/err" &&
  python3 - "$tmp/t.json" "$(($(stat -c %s "$d/one") + 3 + $(stat -c %s "$d/odd")))" <<'PY' && ok || bad "--trace of three jobs: $(cat "$tmp/err")"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
hashed = sum(e["args"]["bytes"] for e in ev if e["ph"] == "X" and e["name"] == "host")
print(hashed, sys.argv[2])
sys.exit(0 if hashed == int(sys.argv[2]) else 1)
PY
rm -f "$tmp/t.json"
# Each line comes in its place, as the files are done: a failure between two digests is printed
# between them where the streams meet (all the failures came first, once).
"$HETPIPE" checksum "$d/one" "$d/nope" "$d/odd" >"$tmp/out" 2>&1
[[ $(cut -c1-9 "$tmp/out") == "$(cut -c1-9 "$tmp/ref" | head -1)
hetpipe: 
$(cut -c1-9 "$tmp/ref" | tail -1)" ]] && ok || bad "lines in the inputs' order: $(cat "$tmp/out")"
"$HETPIPE" checksum -a crc32c --json "$d/one" "$d/nope" "$d/odd" >"$tmp/out" 2>/dev/null
[[ $? -eq 1 ]] && python3 -c '
import json, sys
r = json.load(sys.stdin)
assert [e["file"].rsplit("/", 1)[1] for e in r] == ["one", "nope", "odd"], r
assert "digest" in r[0] and "digest" in r[2] and "digest" not in r[1], r
assert r[1]["error"] == "no such file or directory" and r[1]["algorithm"] == "crc32c", r
' <"$tmp/out" && ok || bad "--json with a missing path: $(cat "$tmp/out")"
# /proc/sys refuses reads of 4 MiB or more (ENOMEM), the default chunk of CPU lanes alone: read
# in smaller pieces. In --check too, with the other files' lines.
if [[ -r /proc/sys/kernel/hostname ]]; then
  want=$(python3 -c 'import sys, zlib; print("%08x" % zlib.crc32(open(sys.argv[1], "rb").read()))' /proc/sys/kernel/hostname)
  got=$("$HETPIPE" checksum -a crc32 --device cpu /proc/sys/kernel/hostname 2>&1)
  [[ ${got:0:8} == "$want" ]] && ok || bad "/proc/sys/kernel/hostname: $got"
fi
# A file that fails while it is read (/proc/self/mem opens, and its first read is an I/O error)
# fails its own line in --check; the other lines are still verified.
if [[ -r /proc/self/mem ]]; then
  "$HETPIPE" checksum "$d/one" >"$tmp/memsums"
  printf '%064d  /proc/self/mem\n' 0 >>"$tmp/memsums"
  "$HETPIPE" checksum "$d/odd" >>"$tmp/memsums"
  "$HETPIPE" checksum --check "$tmp/memsums" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 && $(cat "$tmp/out") == "$d/one: OK
/proc/self/mem: FAILED open or read
$d/odd: OK" && $(head -1 "$tmp/err") == "hetpipe: /proc/self/mem: input/output error" ]] &&
    ok || bad "--check with a read error: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  # Standard input listed too, and /dev/stdin: inputs read once have a job of their own, so the
  # file that fails is not what makes them read again (they were FAILED, or checked against
  # what was left of the pipe).
  one_hex=$(cut -c1-64 <<<"$(grep "  $d/one\$" "$tmp/memsums")")
  printf '%s  -\n' "$one_hex" >>"$tmp/memsums"
  "$HETPIPE" checksum --check "$tmp/memsums" <"$d/one" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 && $(tail -1 "$tmp/out") == "-: OK" ]] && ok ||
    bad "--check with a read error and -: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  printf '%s  /dev/stdin\n%064d  /proc/self/mem\n' "$one_hex" 0 >"$tmp/memsums2"
  cat "$d/one" | "$HETPIPE" checksum --check "$tmp/memsums2" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 && $(head -1 "$tmp/out") == "/dev/stdin: OK" ]] && ok ||
    bad "--check of /dev/stdin (a pipe) with a read error: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  # Without --check: a pipe, standard input and a FIFO beside the failing file get their digests
  # (the FIFO's writer has gone by the time a second run would open it again: that waited for
  # ever, and the pipe's second read printed the digest of nothing).
  "$HETPIPE" checksum "$d/one" "$d/odd" >"$tmp/ref"
  "$HETPIPE" checksum <(cat "$d/one") /proc/self/mem "$d/odd" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 && $(cut -c1-64 "$tmp/out") == "$(cut -c1-64 "$tmp/ref")" ]] && ok ||
    bad "a pipe beside a read error: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  "$HETPIPE" checksum - /proc/self/mem "$d/odd" <"$d/one" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 && $(cut -c1-64 "$tmp/out") == "$(cut -c1-64 "$tmp/ref")" ]] && ok ||
    bad "- beside a read error: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  mkfifo "$tmp/fifo1"
  (cat "$d/one" >"$tmp/fifo1") &
  timeout -k 1 10 "$HETPIPE" checksum "$tmp/fifo1" /proc/self/mem "$d/odd" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  wait
  [[ $rc -eq 1 && $(cut -c1-64 "$tmp/out") == "$(cut -c1-64 "$tmp/ref")" ]] && ok ||
    bad "a FIFO beside a read error: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  rm -f "$tmp/fifo1"
  # Without --check the same: the file that fails midway is reported, the others printed.
  "$HETPIPE" checksum "$d/one" /proc/self/mem "$d/odd" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  "$HETPIPE" checksum "$d/one" "$d/odd" >"$tmp/ref"
  [[ $rc -eq 1 ]] && cmp -s "$tmp/ref" "$tmp/out" &&
    [[ $(cat "$tmp/err") == "hetpipe: /proc/self/mem: input/output error" ]] && ok ||
    bad "checksum with a read error: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  # After the first such failure the others are found by reading their first byte, not by a run
  # of the job each (each run read every other file again): two jobs, not four (-v's lines).
  mkdir -p "$tmp/mems" && for i in 1 2 3; do ln -sf /proc/self/mem "$tmp/mems/m$i"; done
  "$HETPIPE" checksum -v "$d/one" "$tmp/mems/m1" "$tmp/mems/m2" "$tmp/mems/m3" "$d/odd" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 ]] && cmp -s "$tmp/ref" "$tmp/out" && [[ $(grep -c "^hetpipe: .* in [0-9.]* s" "$tmp/err") -eq 2 &&
    $(grep -c ": input/output error$" "$tmp/err") -eq 3 ]] && ok ||
    bad "three read errors: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  # That first read is of 8 bytes, and EINVAL does not count: /proc/kpagecount refuses reads of
  # other than whole 8-byte words, and was failed by a 1-byte one although the job reads it.
  if head -c 8 /proc/kpagecount >/dev/null 2>&1; then
    "$HETPIPE" checksum -a crc32 "$tmp/mems/m1" /proc/kpagecount >"$tmp/out" 2>"$tmp/err"
    [[ $? -eq 1 && $(cut -c9- "$tmp/out") == "  /proc/kpagecount" && $(cat "$tmp/err") == "hetpipe: $tmp/mems/m1: input/output error" ]] &&
      ok || bad "/proc/kpagecount beside a read error: $(cat "$tmp/out" "$tmp/err")"
  fi
fi
# --check verifies in the mode given: derived keys are OK under --derive-key with their context,
# FAILED as plain hashes.
"$HETPIPE" checksum --derive-key ctx "$d/odd" "$d/one" >"$tmp/dsums" || bad "--derive-key sums"
"$HETPIPE" checksum --derive-key ctx --check "$tmp/dsums" >"$tmp/out" 2>"$tmp/err" &&
  [[ $(grep -c ': OK$' "$tmp/out") -eq 2 ]] && ok || bad "--check --derive-key: $(cat "$tmp/out" "$tmp/err")"
"$HETPIPE" checksum --check "$tmp/dsums" >"$tmp/out" 2>/dev/null
rc=$?
((rc == 1)) && [[ $(grep -c ': FAILED$' "$tmp/out") -eq 2 ]] && ok || bad "--check of derived keys as hashes: exit $rc"
expect_error "--check of a folder" 1 "is a directory" -- checksum --check "$d/sub"
expect_error "--check with --json" 2 "not --json" -- checksum --check "$tmp/sums" --json
expect_error "key file a folder" 1 "sub: is a directory" -- checksum --keyed "$d/sub" "$d/one"
# An empty name (an unset variable) is refused: it once hashed without the key, or without --check.
expect_error "--keyed ''" 2 "--keyed: an empty file name" -- checksum --keyed '' "$d/one"
expect_error "--check ''" 2 "files: an empty file name" -- checksum --check ''
expect_error "--check --json" 2 "--check prints OK/FAILED lines, not --json" -- checksum --check --json "$tmp/sums"
# --keyed -: standard input holds the key, so it cannot hold data or the list as well.
expect_error "--keyed - without files" 2 "standard input holds the key; name the files" -- checksum --keyed -
expect_error "--keyed - and a - FILE" 2 "standard input holds the key" -- checksum --keyed - "$d/one" -
expect_error "--keyed - --check -" 2 "cannot hold both the key and a list" -- checksum --keyed - --check -
expect_error "--keyed - --check" 2 "cannot hold both the key and a list" -- checksum --keyed - --check
printf '%s\n' "$(head -c 64 /dev/zero | tr '\0' 0)  -" >"$tmp/dashsum"
"$HETPIPE" checksum --keyed - --check "$tmp/dashsum" <"$tmp/shortkey" >"$tmp/out" 2>"$tmp/err"
rc=$?
# (the short key is refused first; a 32-byte one reaches the list)
[[ $rc -eq 1 ]] && grep -q 'exactly 32 bytes' "$tmp/err" && ok || bad "--keyed - short key: $rc $(cat "$tmp/err")"
head -c 32 "$d/m3" >"$tmp/key32"
"$HETPIPE" checksum --keyed - --check "$tmp/dashsum" <"$tmp/key32" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 ]] && grep -q '^hetpipe: -: standard input held the key$' "$tmp/err" && ok ||
  bad "--keyed - with a listed -: $rc $(cat "$tmp/err")"

# Waits that never end stop at the first SIGINT (the list, the key, the data on a FIFO or a pipe
# whose writer is idle, and a FIFO no writer opens): each once needed a second signal.
mkfifo "$tmp/idle"
# Well within the 2 s deadline that would end them anyway.
for args in "--check $tmp/idle" "--keyed $tmp/idle $d/one" "$tmp/idle" "-a crc32c $d/one $tmp/idle"; do
  # shellcheck disable=SC2086
  "$HETPIPE" checksum $args >/dev/null 2>"$tmp/err" </dev/null &
  interrupt_job $! 0.5
  rc=$?
  [[ $rc -eq 130 && $interrupt_ms -lt 1200 ]] && grep -q '^hetpipe: interrupted' "$tmp/err" && ok ||
    bad "SIGINT while waiting on a FIFO (checksum $args; 255: still waiting 5 s later): exit $rc after $interrupt_ms ms"
done
sleep 30 >"$tmp/idle" &
holder=$!
for args in "--check -" "--keyed - $d/one" "-"; do
  # shellcheck disable=SC2086
  "$HETPIPE" checksum $args <"$tmp/idle" >/dev/null 2>"$tmp/err" &
  interrupt_job $! 0.5
  rc=$?
  [[ $rc -eq 130 && $interrupt_ms -lt 1200 ]] && ok ||
    bad "SIGINT while standard input is idle (checksum $args): exit $rc after $interrupt_ms ms"
done
kill $holder 2>/dev/null; wait $holder 2>/dev/null
# A standard input someone else made non-blocking is read in full (it once failed with "resource
# temporarily unavailable" as soon as the pipe was empty).
python3 - "$HETPIPE" "$d/m3" <<'PY' >"$tmp/out" && ok || bad "non-blocking standard input: $(cat "$tmp/out")"
import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_NONBLOCK)
job = subprocess.Popen([sys.argv[1], "checksum", "-a", "crc32c", "-"], stdin=r,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
os.close(r)
data = open(sys.argv[2], "rb").read()
for i in range(0, len(data), 5000):
    os.write(w, data[i:i + 5000])
    time.sleep(0.002)
os.close(w)
out = job.communicate(timeout=20)[0].decode()
ref = subprocess.run([sys.argv[1], "checksum", "-a", "crc32c", sys.argv[2]],
                     capture_output=True, text=True).stdout.split()[0]
print(out.strip())
sys.exit(0 if job.returncode == 0 and out.split()[0] == ref else 1)
PY
expect_error "--length too large" 2 "--length must be between 1 and" -- checksum --length 4294967296 "$d/one"

# Few file descriptors (ulimit -n 64): the reader keeps fewer inputs open ("too many open files"
# once, with 64 open at once).
mkdir -p "$d/many"
for i in $(seq 200); do printf '%s' "$i" >"$d/many/f$i"; done
(close_inherited_fds && ulimit -n 64 && "$HETPIPE" checksum -r -a crc32 "$d/many" >"$tmp/out" 2>"$tmp/err") &&
  [[ $(wc -l <"$tmp/out") -eq 200 ]] && ok || bad "ulimit -n 64: $(cat "$tmp/err")"
rm -rf "$d/many"

# --json with a file name that is not UTF-8: U+FFFD for the bad byte, not an internal error.
bad_name=$(printf 'bad\xffname')
printf z >"$d/$bad_name"
"$HETPIPE" checksum --json -a crc32 "$d/$bad_name" >"$tmp/out" 2>"$tmp/err" &&
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r[0]["file"].endswith("bad\ufffdname"), r' "$tmp/out" &&
  ok || bad "--json, non-UTF-8 name: $(cat "$tmp/out" "$tmp/err")"
rm -f "$d/$bad_name"

# A socket that is reset after its data: the error is reported, after the data, not lost (a
# read that gathers what a pipe or socket holds had taken the reset, which a socket reports once,
# as the end: a digest of the data so far and exit 0).
python3 - "$HETPIPE" <<'PY' >"$tmp/out" 2>&1 && ok || bad "a reset socket: $(cat "$tmp/out")"
import socket, subprocess, sys
a, b = socket.socketpair()
b.sendall(b"x")  # left unread at a: closing a resets the connection
a.sendall(b"y" * 100000)
a.close()
r = subprocess.run([sys.argv[1], "checksum", "-a", "crc32", "-"], stdin=b, capture_output=True)
print(r.returncode, r.stdout, r.stderr)
sys.exit(0 if r.returncode == 1 and b"connection reset by peer" in r.stderr and not r.stdout else 1)
PY
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
