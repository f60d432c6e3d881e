#!/usr/bin/env bash
# End-to-end checks of the hetpipe command: results, JSON, stdin, bad input (one clear line on
# stderr, non-zero exit, nothing written), interruption. HETPIPE names the binary.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# The sample job works and its JSON parses back to the same numbers in every device mode.
"$HETPIPE" stats --dtype u16 "$samples"/weather.npy "$samples"/latency.npy "$samples"/counts.u16 \
  "$samples"/stations.csv >"$tmp/table" 2>"$tmp/err" && grep -q weather.npy "$tmp/table" &&
  grep -q 'stations.csv  f64 (12000, 2)' "$tmp/table" && ok || bad "sample table: $(cat "$tmp/err")"
"$HETPIPE" stats --json --device cpu --chunk-size 64K "$samples"/weather.npy >"$tmp/a.json" &&
  "$HETPIPE" stats --json --device cpu --chunk-size 1M --cpu-threads 1 "$samples"/weather.npy >"$tmp/b.json" &&
  cmp -s "$tmp/a.json" "$tmp/b.json" && ok || bad "JSON differs between chunk sizes"
python3 - "$tmp/a.json" <<'PY' && ok || bad "JSON content"
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r) == 1 and r[0]["dtype"] == "f64" and r[0]["shape"] == [40000, 4], r[0]["shape"]
c = r[0]["columns"]
assert len(c) == 4
for col in c:
    assert col["count"] + col["nan_count"] == 40000
    for k in ("min", "max", "sum", "mean", "variance", "sample_variance", "std"):
        assert isinstance(col[k], float), (k, col[k])
    assert col["min"] <= col["mean"] <= col["max"]
    assert abs(col["std"] ** 2 - col["variance"]) <= 1e-12 * col["variance"]
PY

# libcrypto is loaded by the commands that use it (host/crypto_lib.hpp), not linked: linked, its
# loading took 0.7 ms of every command's start. `encrypt` still finds it.
if command -v readelf >/dev/null; then
  readelf -d "$HETPIPE" | grep -q 'NEEDED.*libcrypto' && bad "the binary links libcrypto" || ok
fi
printf x | HP_PW=pw "$HETPIPE" encrypt --passphrase-env HP_PW --work-factor 10 -o "$tmp/x.age" 2>"$tmp/err" &&
  HP_PW=pw "$HETPIPE" decrypt --passphrase-env HP_PW -o - "$tmp/x.age" 2>>"$tmp/err" | cmp -s - <(printf x) &&
  ok || bad "encrypt and decrypt through the loaded libcrypto: $(cat "$tmp/err")"

# Standard input gives the same result as the file.
"$HETPIPE" stats --json --dtype u16 "$samples"/counts.u16 | sed 's#"file": ".*"#"file": "-"#' >"$tmp/f.json"
cat "$samples"/counts.u16 | "$HETPIPE" stats --json --dtype u16 - >"$tmp/s.json" &&
  cmp -s "$tmp/f.json" "$tmp/s.json" && ok || bad "stdin result differs from the file's"

# gen is deterministic and its output reads back.
"$HETPIPE" gen --dtype f32 --rows 100K --npy --seed 7 -o "$tmp/g1.npy" &&
  "$HETPIPE" gen --dtype f32 --rows 100K --npy --seed 7 -o "$tmp/g2.npy" && cmp -s "$tmp/g1.npy" "$tmp/g2.npy" &&
  "$HETPIPE" stats --json "$tmp/g1.npy" | grep -q '"count": 100000' && ok || bad "gen"
# 8-bit data spreads over its range (normal and uniform were nearly all 255: centred at 1000).
for t in u8 i8; do
  for dist in normal uniform; do
    "$HETPIPE" gen --dtype $t --rows 20000 --npy --dist $dist -o "$tmp/g8.npy" &&
      python3 -c "
import numpy as np, sys
a = np.load(sys.argv[1]).astype(float)
assert (a == a.max()).mean() < 0.01 and a.std() > 20, (a.min(), a.max(), a.std())
" "$tmp/g8.npy" && ok || bad "gen --dtype $t --dist $dist: degenerate"
  done
done
rm -f "$tmp/g8.npy"
# Whole numbers only, within their range (a sign, 32-bit overflow and 2^64 were taken quietly).
expect_error "gen-images --size past 32 bits" 2 "--size must be WIDTHxHEIGHT" -- gen-images --size 4294967297x1 -o "$tmp/gi"
expect_error "gen-images --size negative" 2 "--size must be WIDTHxHEIGHT" -- gen-images --size -4x3 -o "$tmp/gi"
expect_error "gen-images --count -1" 2 "--count: '-1' is not a whole number" -- gen-images --count -1 -o "$tmp/gi"
expect_error "gen-images --count huge" 2 "--count: '1000000000000' is not a whole number" -- gen-images --count 1000000000000 -o "$tmp/gi"
expect_error "gen --seed 2^64" 2 "--seed: '18446744073709551616' is not a whole number" -- gen --dtype u8 --rows 5 --seed 18446744073709551616 -o "$tmp/gi"
# Every numeric option says what it takes, not CLI11's "Could not convert"; an empty value is
# refused, not taken for the default.
expect_error "--cpu-threads abc" 2 "--cpu-threads: 'abc' is not a whole number from 0 to 4294967295" -- checksum --cpu-threads abc "$tmp/gi"
expect_error "--slots empty" 2 "--slots: '' is not a whole number" -- stats --slots '' "$tmp/gi"
expect_error "--io-threads -1" 2 "--io-threads: '-1' is not a whole number" -- bench read --io-threads -1 "$tmp/gi"
expect_error "--gpu-lanes 2^32" 2 "--gpu-lanes: '4294967296' is not a whole number" -- info --gpu-lanes 4294967296
expect_error "--length abc" 2 "--length: 'abc' is not a whole number" -- checksum -l abc "$tmp/gi"
expect_error "--threads-per-image 1.5" 2 "--threads-per-image: '1.5' is not a whole number" -- image --ops invert --threads-per-image 1.5 -o "$tmp/io" "$tmp/gi"
expect_error "--png-level abc" 2 "--png-level: 'abc' is not a whole number" -- image --ops invert --png-level abc -o "$tmp/io" "$tmp/gi"
expect_error "--work-factor x" 2 "--work-factor: 'x' is not a whole number" -- encrypt -p --passphrase-env HOME --work-factor x "$tmp/gi"
expect_error "--max-work-factor x" 2 "--max-work-factor: 'x' is not a whole number" -- decrypt --max-work-factor x "$tmp/gi"
# info runs no job: the job-only options are refused, not ignored.
expect_error "info -v" 2 "not expected: -v" -- info -v
expect_error "info --progress" 2 "not expected: --progress" -- info --progress
[[ ! -e "$tmp/gi" ]] && ok || bad "a refused gen left $tmp/gi"
# Empty names and a pool the machine cannot hold: usage errors that say so (the names were
# "is a directory" with no name, an empty --trace meant none, the pool "internal error").
expect_error "-o ''" 2 "an empty output file name" -- gen --dtype u8 --rows 5 -o ""
expect_error "--trace ''" 2 "--trace: an empty file name" -- stats --dtype u8 --trace "" "$tmp/seven"
printf 'abc' | "$HETPIPE" stats --dtype u8 --slots 65536 --chunk-size 1G - >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 2 && $(cat "$tmp/err") == "hetpipe: cannot allocate 65536 slots of 1 GiB (64 TiB): lower --slots or --chunk-size" ]] &&
  ok || bad "a pool past memory: rc $rc: $(cat "$tmp/err")"

# Trace and verbose summary.
"$HETPIPE" stats --device cpu --chunk-size 64K --trace "$tmp/trace.json" -v "$samples"/latency.npy >/dev/null 2>"$tmp/v" &&
  python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['traceEvents']; assert any(e.get('name')=='host' for e in t); assert any(e.get('name')=='read' for e in t)" "$tmp/trace.json" &&
  grep -q 'busy' "$tmp/v" && ok || bad "trace / -v"
# The pool's pages: huge pages unless HETPIPE_HUGE_PAGES (or a balloon that reports free memory
# to its host) says no; -v says which.
for v in 0 1; do
  HETPIPE_HUGE_PAGES=$v "$HETPIPE" stats --device cpu -v "$samples"/latency.npy >/dev/null 2>"$tmp/v" &&
    grep 'pool' "$tmp/v" | grep -q "$([[ $v == 1 ]] && echo 'huge pages advised' || echo '4 KiB pages')" &&
    ok || bad "HETPIPE_HUGE_PAGES=$v: $(grep pool "$tmp/v")"
done
"$HETPIPE" bench read "$samples"/latency.npy | grep -q 'GB/s' && ok || bad "bench read"
"$HETPIPE" bench copy "$samples"/latency.npy -o "$tmp/copy.npy" | grep -q 'GB/s' &&
  cmp -s "$samples"/latency.npy "$tmp/copy.npy" && ok || bad "bench copy writes the same bytes"
# Found by an audit. bench copy to standard output keeps its summary off the copy (it followed
# the copied bytes on stdout), by "-" or by another name; the JSON says the set-up apart.
"$HETPIPE" bench copy "$samples"/latency.npy -o - 2>"$tmp/err" | cmp -s "$samples"/latency.npy - &&
  grep -q 'GB/s (set-up' "$tmp/err" && ok || bad "bench copy -o -: $(cat "$tmp/err")"
"$HETPIPE" bench copy "$samples"/latency.npy -o /dev/stdout >"$tmp/copy2.npy" 2>"$tmp/err" &&
  cmp -s "$samples"/latency.npy "$tmp/copy2.npy" && grep -q 'GB/s' "$tmp/err" && ok ||
  bad "bench copy -o /dev/stdout: $(cat "$tmp/err")"
"$HETPIPE" bench read --json "$samples"/latency.npy | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["bytes"] > 0 and r["setup_seconds"] >= 0 and r["cpu_lanes"] >= 1 and r["chunk_size"] > 0, r' &&
  ok || bad "bench read --json"
expect_error "bench copy ''" 2 "file: an empty file name" -- bench copy '' -o "$tmp/x"
expect_error "bench copy -o ''" 2 "an empty file name" -- bench copy "$samples"/latency.npy -o ''
# A UV_THREADPOOL_SIZE given stands for small files too (the pool grew to 16 threads for them),
# and GPU lanes that cannot run hold no slots (--device cpu --gpu-lanes 64 took 138).
printf 1 >"$tmp/s1" && printf 22 >"$tmp/s2"
[[ $(UV_THREADPOOL_SIZE=3 "$HETPIPE" bench read --reads pool "$tmp/s1" "$tmp/s2") == *", 3 io threads,"* &&
   $(env -u UV_THREADPOOL_SIZE "$HETPIPE" bench read --reads pool "$tmp/s1" "$tmp/s2") == *", 16 io threads,"* ]] &&
  ok || bad "UV_THREADPOOL_SIZE for small files: $(UV_THREADPOOL_SIZE=3 "$HETPIPE" bench read --reads pool "$tmp/s1" "$tmp/s2")"
[[ $("$HETPIPE" info --device cpu --gpu-lanes 64 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["slots"])') == \
   $("$HETPIPE" info --device cpu --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["slots"])') ]] &&
  ok || bad "--gpu-lanes without GPU lanes: $("$HETPIPE" info --device cpu --gpu-lanes 64 | grep slots)"
# A transform's trace holds every output write (the last ones' commits once came after the trace
# was written: 0-7 write spans of 7, varying run to run).
head -c $((7 << 20)) /dev/urandom >"$tmp/seven"
for _ in 1 2 3; do
  rm -f "$tmp/seven.out"
  "$HETPIPE" bench copy --chunk-size 1M --trace "$tmp/copy-trace.json" "$tmp/seven" -o "$tmp/seven.out" >/dev/null &&
    python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['traceEvents']; w=sum(e.get('name')=='write' for e in t); assert w == 7, w" "$tmp/copy-trace.json" &&
    ok || bad "bench copy trace: write spans"
done
# A trace that cannot be written fails the job before it writes anything (an output was once left
# complete, exit 1), and a full disk at the trace's end is an error (exit 0 once).
expect_error "trace in a missing folder" 1 "cannot write the trace file" -- bench copy --trace "$tmp/no/such/t.json" "$tmp/seven" -o "$tmp/seven.copy"
[[ ! -e $tmp/seven.copy ]] && ok || bad "a job whose trace failed left its output"
# The trace is an output like any other: a failed job leaves an old trace file as it was (it was
# once truncated when the job started and removed when it failed), and a device stays a device.
# (A pipe's bad length is found in the job, after the trace was opened.)
echo old >"$tmp/old-trace.json"
mkfifo "$tmp/five"
printf 12345 >"$tmp/five" &
expect_error "failed job with a trace" 1 "not a multiple of the record size" -- stats --dtype u32 --trace "$tmp/old-trace.json" "$tmp/five"
wait
[[ $(cat "$tmp/old-trace.json" 2>/dev/null) == old ]] && ok || bad "a failed job's trace replaced the old file"
mkfifo "$tmp/trace-fifo"
cat "$tmp/trace-fifo" >"$tmp/fifo-trace.json" &
"$HETPIPE" checksum --trace "$tmp/trace-fifo" "$tmp/seven" >/dev/null && wait $! &&
  [[ -p $tmp/trace-fifo ]] && python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$tmp/fifo-trace.json" &&
  ok || bad "a trace into a FIFO"
if [[ -w /dev/full ]]; then
  # checksum prints each digest as its file is done, before the trace is written at the end.
  "$HETPIPE" checksum --trace /dev/full "$tmp/seven" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [[ $rc -eq 1 && $(cat "$tmp/err") == "hetpipe: /dev/full: cannot write the trace file: "* &&
    $(cat "$tmp/out") == "$("$HETPIPE" checksum "$tmp/seven")" ]] && ok ||
    bad "trace to a full disk: rc $rc: $(cat "$tmp/out" "$tmp/err")"
  [[ -c /dev/full ]] && ok || bad "/dev/full is gone"
fi
"$HETPIPE" info | grep -q 'CPU lane' && "$HETPIPE" info | grep -q -- '--reads map' && [[ $("$HETPIPE" info --json --reads lane | python3 -c 'import json,sys; print(json.load(sys.stdin)["reads"])') == lane ]] && "$HETPIPE" info --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["chunk_size"] > 0 and j["auto_gpu_min_remaining_seconds"] == 0.5 and j["reads"] == "map" and j["cpu_lanes_beside_gpu"] <= j["cpu_lanes"]' && ok || bad "info"

# Bad input: one line, non-zero exit, nothing on stdout.
printf '12345' >"$tmp/odd.bin"
printf '\x93NUMPY\x01\x00\x76\x00{' >"$tmp/trunc.npy"
python3 - "$tmp" <<'PY'
import struct, sys
d = sys.argv[1]
def npy(name, descr, shape, nbytes):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    open(f"{d}/{name}", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + b"\x01" * nbytes)
npy("lying.npy", "<f4", "(1000,)", 400)
npy("big.npy", ">f4", "(10,)", 40)
npy("cube.npy", "<f4", "(2, 2, 2)", 32)
npy("obj.npy", "|O", "(2,)", 16)
PY
expect_error "missing file" 1 "$tmp/nope: no such file" -- stats --dtype f32 "$tmp/nope"
# A 2-D .npy whose row is wider than the default chunk (1.5 M f64 columns, 12 MB a row): the
# chunk grows to a row (it was refused: "--chunk-size 4 MiB is smaller than one record"); a chunk
# size given is held to, and the refusal names the file.
python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.arange(3000000, dtype='<f8').reshape(2, 1500000))" "$tmp/wide.npy"
"$HETPIPE" stats --json "$tmp/wide.npy" >"$tmp/out" 2>"$tmp/err" &&
  python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))[0]['columns']
assert len(c) == 1500000 and c[0]['sum'] == 1500000.0 and c[-1]['sum'] == 4499998.0, c[-1]
" "$tmp/out" && ok || bad "a row wider than the default chunk: $(cat "$tmp/err")"
expect_error "a row wider than --chunk-size" 2 "$tmp/wide.npy: one record (11.44 MiB) is larger than the chunk" -- stats --chunk-size 4M "$tmp/wide.npy"
rm -f "$tmp/wide.npy"
# JSON doubles are exact and written as Python writes them (nlohmann-json wrote
# 6.5133849661047024e+16 for 6.513384966104702e+16, 112 of 59 914 random doubles a digit longer;
# then 1e+03 for 1000.0 and 1245649301959723712512.0 for 1.2456493019597237e+21).
python3 - "$tmp/doubles.npy" <<'PY'
import numpy as np, sys
bits = np.random.default_rng(7).integers(0, 2**64, 20000, dtype=np.uint64)
v = bits.view("<f8")
v = v[np.isfinite(v)]
v = np.concatenate([v, [6.513384966104702e16, 30000.0, -0.0, 5e-324, 1e300, 1000.0, 1e5, 1e-4,
                        1.5e-5, 1e16, 9999999999999998.0, 0.1, -2.5e-310]])
np.save(sys.argv[1], v.reshape(1, -1))
PY
"$HETPIPE" stats --json "$tmp/doubles.npy" >"$tmp/out" 2>"$tmp/err" && python3 - "$tmp/doubles.npy" "$tmp/out" <<'PY' && ok || bad "JSON doubles: $(head -c 500 "$tmp/err")"
import json, re, sys
import numpy as np
v = np.load(sys.argv[1])[0]
tokens = []
cols = json.loads(open(sys.argv[2]).read(), parse_float=lambda t: tokens.append(t) or float(t))[0]["columns"]
longer = [t for t in tokens if t != repr(float(t))]  # Python's shortest form, as it writes it
got = np.array([c["min"] for c in cols], dtype="<f8")
assert got.view("<u8").tolist() == v.view("<u8").tolist(), "a double changed"
assert all("." in t or "e" in t for t in tokens), "a float written as an integer"
assert not longer, longer[:5]
PY
rm -f "$tmp/doubles.npy"
# The JSON text is written directly (the document for a million columns took 2 GB): no columns, a
# 0-d array, non-finite values and a name to escape still make valid JSON with sorted keys.
python3 - "$tmp" <<'PY'
import numpy as np, sys
d = sys.argv[1]
np.save(d + "/e0.npy", np.zeros((5, 0)))
np.save(d + "/s0.npy", np.float64(3.5))
a = np.arange(6.0).reshape(3, 2)
a[0, 0] = np.nan
a[1, 1] = np.inf
np.save(d + '/we"ird\\name.npy', a)
PY
"$HETPIPE" stats --json "$tmp/e0.npy" "$tmp/s0.npy" "$tmp/we\"ird\\name.npy" >"$tmp/out" 2>"$tmp/err" &&
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert [x["shape"] for x in r] == [[5, 0], [], [3, 2]], r
assert r[0]["columns"] == [] and r[1]["columns"][0]["sum"] == 3.5, r
c = r[2]["columns"]
assert c[0]["nan_count"] == 1 and c[0]["count"] == 2 and c[0]["min"] == 2.0, c
assert c[1]["max"] == "inf" and c[1]["sum"] == "inf" and c[1]["min"] == 1.0, c
assert r[2]["file"].endswith("we\"ird\\name.npy"), r[2]["file"]
assert list(c[0]) == sorted(c[0]) and list(r[0]) == ["columns", "dtype", "file", "shape"]
' "$tmp/out" && ok || bad "stats --json edge cases: $(cat "$tmp/err")"
rm -f "$tmp/e0.npy" "$tmp/s0.npy" "$tmp/we\"ird\\name.npy"
# Columns past max_stats_columns are refused with the file's name (a 128-byte empty array of 10^7
# columns ran a minute and took 12 GB; of 2^61 it was "internal error: vector::_M_default_append").
for cols in 4194305 10000000 2305843009213693952 18446744073709551615; do
  python3 - "$tmp/cols.npy" "$cols" <<'PY'
import struct, sys
h = "{'descr': '|u1', 'fortran_order': False, 'shape': (0, %s), }" % sys.argv[2]
h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
PY
  expect_error "$cols columns" 1 "$tmp/cols.npy: has $cols columns; stats takes at most 4194304" -- stats "$tmp/cols.npy"
done
rm -f "$tmp/cols.npy"
# A /proc file starting with the .npy magic states size 0: read as raw data, as every /proc file
# is (its header was parsed: "internal error: parse_npy: more bytes given than file_size").
(exec -a $'\x93NUMPY\x01' sleep 10) &
magic=$!
for _ in $(seq 100); do  # until the exec is done (a busy box took longer than 0.3 s)
  [[ $(head -c 6 "/proc/$magic/cmdline" 2>/dev/null | od -An -tx1 | tr -d ' ') == 934e554d5059 ]] && break
  sleep 0.05
done
"$HETPIPE" stats --dtype u8 --json "/proc/$magic/cmdline" >"$tmp/out" 2>"$tmp/err" &&
  python3 -c '
import json, sys
c = json.load(sys.stdin)[0]["columns"][0]
assert c["count"] == len(b"\x93NUMPY\x01\0" + b"10\0") and c["max"] == 0x93, c' <"$tmp/out" &&
  ok || bad "a /proc file with the .npy magic: $(cat "$tmp/out" "$tmp/err")"
kill $magic 2>/dev/null
wait $magic 2>/dev/null
# An empty name (an unset variable) among the inputs is refused, as --trace '' is: it was
# "hetpipe: no such file or directory", naming nothing. --dtype '' is an unknown type, not "give
# --dtype".
expect_error "stats ''" 2 "files: an empty file name" -- stats --dtype u8 "$tmp/seven" ''
expect_error "checksum ''" 2 "files: an empty file name" -- checksum "$tmp/seven" ''
expect_error "encrypt ''" 2 "input: an empty file name" -- encrypt -r age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq ''
expect_error "--dtype ''" 2 "unknown --dtype ''" -- stats --dtype '' "$tmp/seven"
# Too few file descriptors for the reader's event loop is one line and exit 1 (libuv's abort(), or
# std::terminate on the monitor thread left joinable, ended the process). Not under a sanitizer,
# whose own checks need descriptors (UBSan then takes a valid object for a bad one).
if sanitized; then
  echo "SKIP: a sanitizer's build cannot run under ulimit -n 8"
else
  for n in 6 8; do
    (close_inherited_fds && ulimit -n $n && exec "$HETPIPE" stats --dtype u8 "$tmp/seven") \
      >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [[ $rc -eq 1 && $(cat "$tmp/err") == "hetpipe: cannot start the reader's event loop: too many open files" ]] &&
      ok || bad "ulimit -n $n: rc $rc: $(cat "$tmp/err")"
  done
fi
# UV_THREADPOOL_SIZE the process was given stands for --io-threads' default (it was overwritten).
[[ $(UV_THREADPOOL_SIZE=7 "$HETPIPE" info --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["io_threads"])' 2>&1) == 7 ]] &&
  ok || bad "UV_THREADPOOL_SIZE: $(UV_THREADPOOL_SIZE=7 "$HETPIPE" info --json | grep io_threads)"
[[ $(UV_THREADPOOL_SIZE=0 "$HETPIPE" info --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["io_threads"] >= 4)' 2>&1) == True ]] &&
  ok || bad "UV_THREADPOOL_SIZE=0 taken as a size"
[[ $(UV_THREADPOOL_SIZE=7 "$HETPIPE" info --json --io-threads 3 | python3 -c 'import json, sys; print(json.load(sys.stdin)["io_threads"])' 2>&1) == 3 ]] &&
  ok || bad "--io-threads over UV_THREADPOOL_SIZE"
# A name with a newline stays on one line (escaped, the line marked by a leading backslash).
expect_error "missing file named with a newline" 1 "\\\\$tmp/a\\\\nb: no such file" -- stats --dtype u8 "$tmp/a"$'\n'"b"
expect_error "unknown command" 2 "unknown command 'frob'" -- frob
# A name a reason quotes is escaped too (the trace's, a command's, a dtype, an option's value).
expect_error "command named with a newline" 2 "\\\\unknown command 'fr\\\\nob'" -- $'fr\nob'
expect_error "dtype with a newline" 2 "\\\\unknown --dtype 'u\\\\n8'" -- stats --dtype $'u\n8' "$tmp/seven"
printf 'x' >"$tmp/in"$'\n'"put"
expect_error "--trace naming an input with a newline" 2 "in\\\\nput: --trace names .*in\\\\nput, which the job reads" -- checksum "$tmp/in"$'\n'"put" --trace "$tmp/in"$'\n'"put"
expect_error "size with a newline" 2 "\\\\invalid size 'a\\\\nb'" -- stats --chunk-size $'a\nb' "$tmp/seven"
expect_error "CLI11's error with a newline" 2 "\\\\--device: g\\\\npu not in .*(see --help)" -- stats --device $'g\npu' "$tmp/seven"
rm -f "$tmp/in"$'\n'"put"
expect_error "unknown bench command" 2 "unknown command 'frob'" -- bench frob
# --trace - is no file named "-" (standard output holds the results).
cd "$tmp" || exit 1
expect_error "--trace -" 2 "--trace writes a file" -- stats --dtype u8 --trace - "$tmp/seven"
cd - >/dev/null || exit 1
[[ ! -e "$tmp/-" ]] && ok || bad "--trace - wrote a file named -"
# --trace naming an input or an output (or a link to one) is refused before any work: the trace's
# rename replaced it (the input lost after its digest was printed; the copy replaced by the trace).
cp "$tmp/seven" "$tmp/seven.keep"
ln -sf "$tmp/seven" "$tmp/seven.link"
expect_error "--trace over an input" 2 "--trace names $tmp/seven, which the job reads or writes" -- checksum --trace "$tmp/seven" "$tmp/seven"
expect_error "--trace over an input, through a link" 2 "--trace names $tmp/seven, which" -- stats --dtype u8 --trace "$tmp/seven.link" "$tmp/seven"
cmp -s "$tmp/seven" "$tmp/seven.keep" && ok || bad "--trace replaced its input"
expect_error "--trace over the output" 2 "--trace names $tmp/copy.out, which" -- bench copy --trace "$tmp/copy.out" "$tmp/seven" -o "$tmp/copy.out"
[[ ! -e "$tmp/copy.out" ]] && ok || bad "--trace over the output left a file"
rm -f "$tmp/seven.keep" "$tmp/seven.link"
expect_error "directory" 1 "$tmp: is a directory" -- stats --dtype f32 "$tmp"
expect_error "size not a multiple" 1 "odd.bin: size 5 is not a multiple" -- stats --dtype f32 "$tmp/odd.bin"
expect_error "raw without dtype" 1 "odd.bin: not a .npy file" -- stats "$tmp/odd.bin"
expect_error "truncated npy header" 1 "trunc.npy: " -- stats "$tmp/trunc.npy"
expect_error "lying npy header" 1 "lying.npy: .*truncated" -- stats "$tmp/lying.npy"
expect_error "big-endian npy" 1 "big.npy: big-endian" -- stats "$tmp/big.npy"
expect_error "3-D npy" 1 "cube.npy: " -- stats "$tmp/cube.npy"
expect_error "object npy" 1 "obj.npy: " -- stats "$tmp/obj.npy"
expect_error "unknown dtype" 2 "unknown --dtype 'f16'" -- stats --dtype f16 "$tmp/odd.bin"
expect_error "bad chunk size" 2 "invalid size" -- stats --chunk-size 4X --dtype u8 "$tmp/odd.bin"
expect_error "chunk size 0" 2 "--chunk-size must be between 4K and 1G" -- stats --chunk-size 0 --dtype u8 "$tmp/odd.bin"
expect_error "stdin without dtype" 2 "give its --dtype" -- stats -
if ! "$HETPIPE" info --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["devices"] else 1)'; then
  expect_error "--device gpu without a GPU" 1 "--device gpu: " -- stats --device gpu --dtype u8 "$tmp/odd.bin"
  # info says so (it showed "0 CPU lanes, 0 GPU lanes" and nothing more).
  "$HETPIPE" info --device gpu | grep -q "no usable CUDA device, so such a job fails" && ok ||
    bad "info --device gpu without a GPU: $("$HETPIPE" info --device gpu | grep job)"
fi
# No permission: root reads anything, so run that case as an unprivileged user when we are root.
printf 'abcd' >"$tmp/secret.bin"
chmod 000 "$tmp/secret.bin"
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null; then
  chmod 755 "$tmp"
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$HETPIPE" stats --dtype u8 "$tmp/secret.bin" 2>&1 >/dev/null)
  rc=$?
  [[ $rc -eq 1 && "$out" == "hetpipe: $tmp/secret.bin: permission denied" ]] && ok || bad "no permission: rc $rc: $out"
elif [[ $(id -u) -ne 0 ]]; then
  expect_error "no permission" 1 "secret.bin: permission denied" -- stats --dtype u8 "$tmp/secret.bin"
fi
# gen into a folder that does not exist: error, nothing left behind.
expect_error "gen to a missing folder" 1 "" -- gen --dtype u8 --rows 10 -o "$tmp/no/such/dir/x.bin"
ls -a "$tmp" | grep -q hetpipe- && bad "temporary file left behind" || ok
# gen's output follows the umask like every other output (mkstemp's 0600 once stayed).
(umask 022 && "$HETPIPE" gen --dtype u8 --rows 10 -o "$tmp/mode.bin") && [[ $(stat -c %a "$tmp/mode.bin") == 644 ]] &&
  ok || bad "gen output mode $(stat -c %a "$tmp/mode.bin")"
expect_error "gen size past 2^64" 2 "more than 2^64" -- gen --dtype f64 --rows 9223372036854775808 --cols 2 -o "$tmp/huge.npy"
# SIGINT stops gen at once (it once ran to the end), exit 130, nothing left behind.
"$HETPIPE" gen --dtype f64 --rows 2G -o "$tmp/big.bin" 2>"$tmp/err" &
interrupt_job $!
rc=$?
[[ $rc -eq 130 && ! -e $tmp/big.bin ]] && ! ls -a "$tmp" | grep -q hetpipe- && ok ||
  bad "gen SIGINT (255: did not stop within 5 s): exit $rc, $(ls -a "$tmp") $(cat "$tmp/err")"
# SIGTERM the same, with its own status: 128 + 15 (it once said 130, as for SIGINT).
"$HETPIPE" gen --dtype f64 --rows 2G -o "$tmp/big.bin" 2>"$tmp/err" &
interrupt_job $! 0.5 TERM
rc=$?
[[ $rc -eq 143 && ! -e $tmp/big.bin ]] && grep -q '^hetpipe: interrupted' "$tmp/err" && ok ||
  bad "gen SIGTERM (255: did not stop within 5 s): exit $rc, $(cat "$tmp/err")"

# Closed standard streams: refused when the command uses them, harmless otherwise (libuv once
# asserted, exit 134, when a file took descriptor 0, 1 or 2); a full standard output is an error
# (exit 1), not a silent loss.
"$HETPIPE" checksum - <&- 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/err") == "hetpipe: -: standard input is closed" ]] && ok || bad "stdin closed: $rc $(cat "$tmp/err")"
"$HETPIPE" stats --dtype u8 "$tmp/odd.bin" >&- 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/err") == "hetpipe: -: standard output is closed" ]] && ok || bad "stdout closed: $rc $(cat "$tmp/err")"
"$HETPIPE" checksum "$tmp/odd.bin" <&- >"$tmp/out" && "$HETPIPE" checksum "$tmp/odd.bin" 2>&- >"$tmp/out2" &&
  cmp -s "$tmp/out" "$tmp/out2" && [[ -s $tmp/out ]] && ok || bad "unused closed streams"
if [[ -w /dev/full ]]; then
  for cmd in "checksum $tmp/odd.bin" "stats --dtype u8 $tmp/odd.bin" "info" "keygen"; do
    # shellcheck disable=SC2086
    "$HETPIPE" $cmd >/dev/full 2>"$tmp/err"
    rc=$?
    [[ $rc -eq 1 ]] && grep -q "^hetpipe: -: write error" "$tmp/err" && ok || bad "$cmd >/dev/full: $rc $(cat "$tmp/err")"
  done
fi

# A FIFO with a writer that ends: the data once, as from the file (opening it for a header check
# and closing it unread ended the writer, and the job then waited for another one forever). No
# --dtype: a FIFO is raw data, a usage error.
"$HETPIPE" gen --dtype f64 --rows 5000 -o "$tmp/five.f64" >/dev/null
mkfifo "$tmp/fifo1"
(cat "$tmp/five.f64" >"$tmp/fifo1") &
timeout 20 "$HETPIPE" stats --json --dtype f64 "$tmp/fifo1" >"$tmp/fifo.json" 2>"$tmp/err" &&
  "$HETPIPE" stats --json --dtype f64 "$tmp/five.f64" >"$tmp/file.json" &&
  diff <(grep -v '"file"' "$tmp/fifo.json") <(grep -v '"file"' "$tmp/file.json") >/dev/null &&
  ok || bad "stats of a FIFO: $(cat "$tmp/err")"
wait
expect_error "FIFO without --dtype" 2 "fifo1: a pipe or device is read as raw data" -- stats "$tmp/fifo1"
mkfifo "$tmp/fi"$'\n'"fo"
expect_error "FIFO named with a newline, without --dtype" 2 "fi\\\\nfo: a pipe or device is read as raw data" -- stats "$tmp/fi"$'\n'"fo"
rm -f "$tmp/fi"$'\n'"fo"

# Interrupt: a pipe that trickles data; SIGINT stops the job with status 130, promptly.
mkfifo "$tmp/fifo"
(while :; do head -c 4096 /dev/urandom; sleep 0.05; done >"$tmp/fifo") 2>/dev/null &
feeder=$!
"$HETPIPE" stats --dtype u8 "$tmp/fifo" >/dev/null 2>"$tmp/err" &
interrupt_job $!
rc=$?
[[ $rc -eq 130 ]] && grep -q '^hetpipe: interrupted' "$tmp/err" && ok ||
  bad "SIGINT (255: did not stop within 5 s): exit $rc, $(cat "$tmp/err")"
kill $feeder 2>/dev/null; wait $feeder 2>/dev/null

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
