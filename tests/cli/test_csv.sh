#!/usr/bin/env bash
# `hetpipe stats` of CSV end to end: the same JSON as the stats of the same values in a .npy
# (written by numpy from Python's float(), which rounds as strtod does), for files, standard input,
# .tsv and --delimiter, --columns, --no-header; and one-line errors naming the line.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

d=$tmp/data
mkdir -p "$d"
python3 - "$d" <<'PY'
import math, os, random, sys
import numpy as np
r = random.Random(9)
d = sys.argv[1]
rows, cols = 20000, 4
vals = [[None] * cols for _ in range(rows)]
lines = ["price,qty,\"score, z\",delta"]
for i in range(rows):
    fields = []
    for c in range(cols):
        k = r.random()
        if k < 0.05:
            t = ""
        elif k < 0.3:
            t = str(r.randint(-10**12, 10**12))
        elif k < 0.6:
            t = f"{r.uniform(-1000, 1000):.{r.randint(0, 19)}f}"
        elif k < 0.65:
            t = f"  {r.gauss(0, 1)!r} "
        else:
            t = f"{r.uniform(1, 10):.6f}e{r.randint(-300, 300)}"
        fields.append(t)
        vals[i][c] = float(t) if t.strip() else math.nan
    lines.append(",".join(fields))
with open(os.path.join(d, "data.csv"), "w") as f:
    f.write("\n".join(lines) + "\n")
with open(os.path.join(d, "data.tsv"), "w") as f:
    f.write("\n".join(l.replace(",", "\t") if i else "price\tqty\tscore, z\tdelta"
                      for i, l in enumerate(lines)) + "\n")
np.save(os.path.join(d, "data.npy"), np.array(vals, dtype=np.float64))
np.save(os.path.join(d, "qty.npy"), np.array([[v[1]] for v in vals], dtype=np.float64))
PY

# The columns' stats equal the .npy's, key for key (the CSV's have names and an empty list of
# columns left out, the .npy's do not).
strip() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for r in d:
    r.pop("file"); [c.pop("name", None) for c in r["columns"]]
    assert not r.pop("skipped_columns", []), "no column is text here"
print(json.dumps(d, sort_keys=True))' "$1"; }
"$HETPIPE" stats --json "$d/data.npy" >"$tmp/npy.json" && strip "$tmp/npy.json" >"$tmp/want" || bad "stats of the .npy failed"
for c in 4K 64K 1M; do
  for t in 1 2; do
    "$HETPIPE" stats --json --chunk-size "$c" --cpu-threads "$t" "$d/data.csv" >"$tmp/csv.json" 2>"$tmp/err" &&
      strip "$tmp/csv.json" | cmp -s "$tmp/want" - && ok ||
      bad "CSV stats (chunk $c, $t threads) differ from the .npy's: $(cat "$tmp/err")"
  done
done
"$HETPIPE" stats --json "$d/data.tsv" >"$tmp/tsv.json" && strip "$tmp/tsv.json" | cmp -s "$tmp/want" - && ok ||
  bad "TSV stats differ from the .npy's"
"$HETPIPE" stats --json --csv - <"$d/data.csv" >"$tmp/stdin.json" && strip "$tmp/stdin.json" | cmp -s "$tmp/want" - && ok ||
  bad "CSV stats of standard input differ from the .npy's"
cat "$d/data.csv" | "$HETPIPE" stats --json --csv - >"$tmp/pipe.json" && strip "$tmp/pipe.json" | cmp -s "$tmp/want" - && ok ||
  bad "CSV stats of a pipe differ from the .npy's"
python3 -c 'import json,sys; n=[c["name"] for c in json.load(open(sys.argv[1]))[0]["columns"]]; sys.exit(n != ["price", "qty", "score, z", "delta"])' "$tmp/csv.json" && ok ||
  bad "CSV column names: $(head -c 300 "$tmp/csv.json")"
# --columns by name and number, and a table that names them.
"$HETPIPE" stats --json "$d/qty.npy" >"$tmp/q.json" && strip "$tmp/q.json" >"$tmp/want_q"
"$HETPIPE" stats --json --columns qty "$d/data.csv" >"$tmp/c.json" && strip "$tmp/c.json" | cmp -s "$tmp/want_q" - && ok ||
  bad "--columns qty differs from qty.npy"
"$HETPIPE" stats --json --columns 2 "$d/data.csv" >"$tmp/c.json" && strip "$tmp/c.json" | cmp -s "$tmp/want_q" - && ok ||
  bad "--columns 2 differs from qty.npy"
# (a name holding a comma is quoted, as a CSV field; unquoted, it is split)
"$HETPIPE" stats --columns 'delta,score, z' "$d/data.csv" >"$tmp/out" 2>"$tmp/err"
grep -q "no column 'score'" "$tmp/err" && ok || bad "--columns splits at commas: $(cat "$tmp/err")"
"$HETPIPE" stats --json --columns '"score, z",delta' "$d/data.csv" >"$tmp/q1.json" &&
  "$HETPIPE" stats --json --columns 3,4 "$d/data.csv" >"$tmp/q2.json" && cmp -s "$tmp/q1.json" "$tmp/q2.json" && ok ||
  bad "--columns with a quoted name differs from the numbers: $(head -c 200 "$tmp/q1.json")"
expect_error "--columns with an open quote" 2 "--columns: a quote that is not closed" -- stats --columns '"score, z' "$d/data.csv"
expect_error "--columns with an empty name" 2 "--columns: an empty column name" -- stats --columns 'price,,delta' "$d/data.csv"
"$HETPIPE" stats --columns price,delta "$d/data.csv" >"$tmp/table" && grep -q '^ *price ' "$tmp/table" &&
  grep -q '^ *delta ' "$tmp/table" && ok || bad "the table names CSV columns: $(cat "$tmp/table")"
# --no-header: the header is then a record whose fields are not numbers: every column is text, and
# left out (named --columns, it is an error naming the line).
"$HETPIPE" stats --json --no-header "$d/data.csv" >"$tmp/nh.json" &&
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[0]; sys.exit(not (r["columns"] == [] and r["skipped_columns"] == ["1", "2", "3", "4"] and r["shape"] == [20001, 0]))' "$tmp/nh.json" && ok ||
  bad "--no-header over a header: $(cat "$tmp/nh.json")"
expect_error "--no-header --columns over a header" 1 "data.csv: line 1: column 1: 'price' is not a number" -- \
  stats --no-header --columns 1 "$d/data.csv"
# Text columns are left out and named, in the table and in --json; the sample's numbers stay.
"$HETPIPE" stats "$samples/stations.csv" >"$tmp/st" && grep -q "left out, not numbers: station, date, note" "$tmp/st" &&
  grep -q '^ *temp_c 12000 ' "$tmp/st" && ok || bad "stations.csv: $(cat "$tmp/st")"
printf '1;2\n3;4\n' >"$d/semi.txt"
"$HETPIPE" stats --json --csv --delimiter ';' "$d/semi.txt" | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]["columns"]; sys.exit(not (c[0]["sum"] == 4.0 and c[1]["sum"] == 6.0 and c[0]["name"] == "1"))' && ok ||
  bad "--delimiter ';' with a numeric first line"
# A space as the delimiter, quoted fields among them, as Python's csv module reads it (delimiter=' '):
# the space after a closing quote and before an opening one still cuts a field, an empty one too.
printf 'a b c\n1 "2" 5\n3  6\n"7" "8" "9"\n' >"$d/space.txt"
"$HETPIPE" stats --json --csv --delimiter ' ' "$d/space.txt" | python3 -c '
import csv, json, math, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=" "))[1:]
got = json.load(sys.stdin)[0]["columns"]
want = [sum(float(r[c]) for r in rows if r[c]) for c in range(3)]
sys.exit(not ([c["sum"] for c in got] == want and got[1]["nan_count"] == 1))' "$d/space.txt" && ok ||
  bad "--delimiter ' ' with quoted fields differs from Python's csv"

# Bad input: one line naming the file and the line; nothing on stdout.
printf 'a,b\n1,2\n3,x\n' >"$d/text.csv"
expect_error "a field that is not a number" 1 'text.csv: line 3: column 2 ("b"): '"'x'"' is not a number' -- stats --columns a,b "$d/text.csv"
printf 'a,b\n1,2\n3\n' >"$d/short.csv"
expect_error "a record with fewer fields" 1 "short.csv: line 3: has 1 field where the first record has 2" -- stats "$d/short.csv"
printf 'a,b\n1,2\n3,"4\n' >"$d/open.csv"
expect_error "a quoted field the file ends in" 1 "open.csv: line 3: a quoted field is not closed" -- stats "$d/open.csv"
printf 'a,b\n1,2\n3,"4\n5,6\n7"x,8\n' >"$d/multi_bad.csv"
expect_error "text after a quoted line break's closing quote" 1 "multi_bad.csv: line 3: text after a closing quote" -- stats "$d/multi_bad.csv"
expect_error "an unknown column" 2 "no column 'zz'" -- stats --columns zz "$d/data.csv"
expect_error "a long delimiter" 2 "--delimiter takes one character" -- stats --delimiter ab "$d/data.csv"
expect_error "a quote as the delimiter" 2 "cannot be a quote" -- stats --delimiter '"' "$d/data.csv"
# Quoted fields holding line breaks (RFC 4180), as Python's csv module reads them: a record goes on
# over lines, wherever the chunks are cut, in files and on standard input.
python3 - "$d" <<'PY'
import csv, io, os, random, sys
import numpy as np
r = random.Random(4)
d = sys.argv[1]
buf = io.StringIO()
w = csv.writer(buf, lineterminator="\n")
w.writerow(["x", "note", "y"])
for i in range(6000):
    note = r.choice(["", "plain", "two\nlines", "a, \"quoted\"\n\nword", "x" * r.randint(0, 300) + "\n" * r.randint(0, 3)])
    w.writerow([f"{r.uniform(-50, 50):.{r.randint(0, 6)}f}", note, str(r.randint(-9, 9))])
text = buf.getvalue()
open(os.path.join(d, "notes.csv"), "w").write(text)
rows = list(csv.reader(io.StringIO(text)))[1:]
np.save(os.path.join(d, "notes.npy"), np.array([[float(a), float(c)] for a, _, c in rows]))
PY
"$HETPIPE" stats --json "$d/notes.npy" >"$tmp/notes.json" && strip "$tmp/notes.json" >"$tmp/want_notes" || bad "stats of notes.npy failed"
for c in 4K 64K 1M; do
  for t in 1 2; do
    "$HETPIPE" stats --json --columns x,y --chunk-size "$c" --cpu-threads "$t" "$d/notes.csv" >"$tmp/n.json" 2>"$tmp/err" &&
      strip "$tmp/n.json" | cmp -s "$tmp/want_notes" - && ok ||
      bad "quoted line breaks (chunk $c, $t threads) differ from Python's csv: $(cat "$tmp/err")"
  done
done
"$HETPIPE" stats --json --csv --columns x,y --chunk-size 4K - <"$d/notes.csv" >"$tmp/n.json" 2>"$tmp/err" &&
  strip "$tmp/n.json" | cmp -s "$tmp/want_notes" - && ok || bad "quoted line breaks on standard input: $(cat "$tmp/err")"
"$HETPIPE" stats --json --chunk-size 4K "$d/notes.csv" >"$tmp/n.json" &&
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[0]; sys.exit(not (r["skipped_columns"] == ["note"] and r["shape"] == [6000, 2]))' "$tmp/n.json" && ok ||
  bad "the notes column is left out: $(head -c 300 "$tmp/n.json")"

# Several files, some bad: each bad one is a line on stderr in its place, the others' statistics
# are printed, the status is 1; --json puts {"error", "file"} in its place.
"$HETPIPE" stats "$d/data.csv" >"$tmp/one.txt"
"$HETPIPE" stats "$d/data.csv" "$d/short.csv" "$d/none.csv" "$d/data.csv" >"$tmp/several.txt" 2>"$tmp/err"
rc=$?
if [[ $rc -eq 1 ]] && cmp -s <(cat "$tmp/one.txt" "$tmp/one.txt") "$tmp/several.txt" &&
  [[ $(sed -n 1p "$tmp/err") == "hetpipe: $d/short.csv: line 3: has 1 field where the first record has 2" ]] &&
  [[ $(sed -n 2p "$tmp/err") == "hetpipe: $d/none.csv: no such file or directory" ]] && [[ $(wc -l <"$tmp/err") -eq 2 ]]; then
  ok
else
  bad "stats of good and bad files: exit $rc, stderr $(cat "$tmp/err")"
fi
"$HETPIPE" stats --json "$d/short.csv" "$d/data.csv" >"$tmp/several.json" 2>"$tmp/err"
rc=$?
python3 - "$tmp/several.json" "$d" <<'PY' && [[ $rc -eq 1 && ! -s $tmp/err ]] && ok || bad "stats --json of a bad and a good file: exit $rc, $(head -c 300 "$tmp/several.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
d = sys.argv[2]
assert doc[0] == {"error": "line 3: has 1 field where the first record has 2", "file": d + "/short.csv"}, doc[0]
assert doc[1]["file"] == d + "/data.csv" and len(doc[1]["columns"]) == 4
PY
# Standard input cannot be read twice: a bad file among streams fails the whole call.
expect_error "a bad file beside standard input" 1 "short.csv: line 3" -- stats --csv - "$d/short.csv"

# --device gpu: the CPU's numbers where a GPU is usable, else the one-line reason and exit 1.
"$HETPIPE" stats --json "$d/data.csv" >"$tmp/ref"
if "$HETPIPE" stats --json --device gpu --chunk-size 4K "$d/data.csv" >"$tmp/got" 2>"$tmp/err"; then
  cmp -s "$tmp/ref" "$tmp/got" && ok || bad "stats --device gpu of CSV differs: $(diff "$tmp/ref" "$tmp/got" | head -3)"
else
  expect_error "CSV with --device gpu without a GPU" 1 "--device gpu: \(no usable CUDA device\|this hetpipe was built without CUDA\)" -- stats --device gpu "$d/data.csv"
fi

echo "csv: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
