#!/usr/bin/env python3
"""`hetpipe image` on images larger than the engine's largest chunk (1 GiB), which run after the
others in a job of their own: a 16384 x 16384 RGB PPM of 16-bit samples (1.5 GiB, sparse on disk)
holding two 256 x 256 blocks of known colour on black, resized to 64 x 64 (area average: each
output pixel is one block), next to a small image and a large one cut short. HETPIPE names the
binary."""
import os
import struct
import subprocess
import sys
import tempfile

HP = os.environ["HETPIPE"]
W = H = 16384
B = 256  # block side: W / 64
HEADER = b"P6\n16384 16384\n65535\n"
BLOCKS = {(3, 5): (65535, 4660, 0), (63, 60): (100, 200, 300)}  # (block x, block y): RGB
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def sparse_ppm(path, blocks, cut=0):
    with open(path, "wb") as f:
        f.write(HEADER)
        f.truncate(len(HEADER) + W * H * 6 - cut)
        for (bx, by), rgb in blocks.items():
            row = struct.pack(">3H", *rgb) * B
            for y in range(by * B, by * B + B):
                f.seek(len(HEADER) + (y * W + bx * B) * 6)
                f.write(row)


def run(*args):
    return subprocess.run([HP, *args], capture_output=True, text=True)


with tempfile.TemporaryDirectory() as d:
    inp = os.path.join(d, "in")
    os.makedirs(inp)
    sparse_ppm(os.path.join(inp, "big.ppm"), BLOCKS)
    sparse_ppm(os.path.join(inp, "cut.ppm"), {}, cut=6)
    r = run("gen-images", "--size", "33x17", "--channels", "3", "--prefix", "small", "-o", inp)
    check(r.returncode == 0, "gen-images: " + r.stderr)
    names = ["big.ppm", "small-000000.ppm", "cut.ppm"]
    out = os.path.join(d, "out")
    r = run("image", "--ops", "resize:64x64", "--cpu-threads", "2", "--no-progress", "-o", out,
            *[os.path.join(inp, n) for n in names])
    check(r.returncode == 1, f"exit {r.returncode}: {r.stderr}")
    err = r.stderr.splitlines()
    check(len(err) == 2 and err[0].startswith(f"hetpipe: {inp}/cut.ppm: ") and "truncated" in err[0],
          "the cut image's line: " + r.stderr)
    check(err[-1:] == ["hetpipe: 1 of 3 images failed; the other 2 were written"],
          "summary: " + r.stderr)
    check(sorted(os.listdir(out)) == ["big.ppm", "small-000000.ppm"], f"outputs: {os.listdir(out)}")

    with open(os.path.join(out, "big.ppm"), "rb") as f:
        data = f.read()
    head = b"P6\n64 64\n65535\n"
    check(data[: len(head)] == head and len(data) == len(head) + 64 * 64 * 6,
          f"big.ppm header or size: {data[:20]!r}, {len(data)} bytes")
    if not failures:
        px = struct.unpack(f">{64 * 64 * 3}H", data[len(head):])
        wrong = [(x, y) for y in range(64) for x in range(64)
                 if px[(y * 64 + x) * 3:(y * 64 + x) * 3 + 3] != BLOCKS.get((x, y), (0, 0, 0))]
        check(not wrong, f"{len(wrong)} wrong pixels, first {wrong[:4]}")

    # The small image's bytes are those of a run without the large ones.
    alone = os.path.join(d, "alone")
    r = run("image", "--ops", "resize:64x64", "--no-progress", "-o", alone,
            os.path.join(inp, "small-000000.ppm"))
    with open(os.path.join(alone, "small-000000.ppm"), "rb") as a, \
            open(os.path.join(out, "small-000000.ppm"), "rb") as b:
        check(r.returncode == 0 and a.read() == b.read(), "the small image differs")

sys.exit(1 if failures else 0)
