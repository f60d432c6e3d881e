#!/usr/bin/env python3
"""Mutation driver for the parsers only the command line reaches as a whole: `decrypt` (the
pipeline reads the age header from the file itself), `image` (PNM/PNG through the job's lanes),
`checksum --check` (the SUMFILE reader) and `stats` (.npy through the reader).

    HETPIPE=build/hetpipe tests/fuzz/cli_mutate.py SEEDS [RUNS]

SEEDS is what fuzz_seeds wrote (SEEDS/age_decrypt, png, pnm, npy, text, age_keys). Each run
mutates a seed (bit flips, byte insert/delete, integer-boundary bytes, splice) and runs the
command on it in a temporary folder (use a tmpfs one: TMPDIR=/dev/shm). A run passes when the
command exits 0 or 1, prints at most one-line "hetpipe: ..." errors on stderr and finishes within
10 s; anything else (a signal, a sanitizer report, another exit code, a hang) is printed with the
input's path, which is kept.
"""
import os, random, subprocess, sys, tempfile

HETPIPE = os.environ.get("HETPIPE", "build/hetpipe")
seeds, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
rng = random.Random(int(os.environ.get("SEED", "1")))

def load(kind):
    d = os.path.join(seeds, kind)
    return [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))]

def mutate(b, pool):
    b = bytearray(b)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and b:
            i = rng.randrange(len(b)); b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif op == 2 and b:
            i = rng.randrange(len(b)); del b[i:i + rng.randint(1, 16)]
        elif op == 3 and b:
            i = rng.randrange(len(b)); v = rng.choice([0, 1, 0x7f, 0x80, 0xff])
            b[i:i + 1] = bytes([v])
        elif op == 4:
            o = rng.choice(pool); i = rng.randrange(len(b) + 1); j = rng.randrange(len(o) + 1)
            b = b[:i] + o[j:]
    return bytes(b)

def check(cmd, what, keep, cwd):
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=10, cwd=cwd, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"hang: {what} ({keep})"
    err = p.stderr.decode(errors="replace")
    bad = [l for l in err.splitlines() if l and not l.startswith("hetpipe: ")]
    if p.returncode not in (0, 1) or bad or "Sanitizer" in err:
        return f"exit {p.returncode}: {what} ({keep}): {err.strip()[:400]}"
    return None

failures = 0
with tempfile.TemporaryDirectory() as tmp:
    ident = os.path.join(tmp, "id.txt")
    open(ident, "wb").write(load("age_keys")[0] + b"\n")
    age, imgs, npy = load("age_decrypt"), load("png") + load("pnm"), load("npy")
    sums = [s[1:] for s in load("text") if s[:1] == b"\2"]
    open(os.path.join(tmp, "a.bin"), "wb").write(b"x")
    for n in range(runs):
        kind = n % 4
        f = os.path.join(tmp, f"in{n}")
        if kind == 0:
            data = mutate(rng.choice(age), age)
            cmd = [HETPIPE, "decrypt", "-i", ident, "-o", os.devnull, f]
        elif kind == 1:
            data = mutate(rng.choice(imgs), imgs)
            f += ".png" if data[:4] == b"\x89PNG" else ".pnm"
            cmd = [HETPIPE, "image", "--ops", "gray,invert", "-o", os.path.join(tmp, "out"), f]
        elif kind == 2:
            data = b"\n".join(mutate(rng.choice(sums), sums) for _ in range(3)) + b"\n"
            cmd = [HETPIPE, "checksum", "-a", "crc32", "--check", f]
        else:
            data = mutate(rng.choice(npy), npy)
            f += ".npy"
            cmd = [HETPIPE, "stats", f]
        open(f, "wb").write(data)
        msg = check(cmd, cmd[1], f, tmp)
        if msg:
            failures += 1
            keep = os.path.join(os.getcwd(), f"cli-mutate-{n}")
            open(keep, "wb").write(data)
            print(msg.replace(f, keep))
        os.unlink(f)
print(f"{runs} runs, {failures} failures")
sys.exit(1 if failures else 0)
