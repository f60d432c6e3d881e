#!/usr/bin/env python3
"""End-to-end check of `hetpipe image` against independent floating-point references.

Each filter chain is run through the command line (--device cpu) over a set of deterministic test
images written here as binary PNM, and every output sample is compared with a reference built
from scipy.ndimage / numpy in double precision with the border rule of host/image_ops.hpp
(replicated border, radius ceil(3 sigma), pixel-centre resampling). The reference rounds to an
integer sample after every op, as hetpipe does, and each output must be within +-1 of it
(threshold and invert: exactly equal). HETPIPE names the binary. Exit 77 (skipped) when numpy or
scipy is missing, 1 when any comparison fails."""
import math
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from scipy import ndimage
except ImportError:
    print("SKIP: numpy/scipy not installed", file=sys.stderr)
    sys.exit(77)

HETPIPE = os.environ.get("HETPIPE")
if not HETPIPE:
    print("test_image_reference.py: set HETPIPE to the hetpipe binary", file=sys.stderr)
    sys.exit(2)


# --- PNM files (binary P5 / P6, read and written here, independent of hetpipe's codec) ---

def write_pnm(path, a, maxval):
    """a: (H, W) gray or (H, W, 3) RGB, integer samples 0..maxval."""
    magic = b"P5" if a.ndim == 2 else b"P6"
    h, w = a.shape[:2]
    dtype = ">u2" if maxval > 255 else "u1"
    with open(path, "wb") as f:
        f.write(magic + b"\n%d %d\n%d\n" % (w, h, maxval))
        f.write(np.ascontiguousarray(a, dtype=dtype).tobytes())


def read_pnm(path):
    """Returns (array of int64 (H, W) or (H, W, 3), maxval)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:2]
    if magic not in (b"P5", b"P6"):
        raise ValueError(f"{path}: not a binary PNM (magic {magic!r})")
    i = 2
    fields = []
    while len(fields) < 3:
        while i < len(data) and (data[i:i + 1].isspace() or data[i:i + 1] == b"#"):
            if data[i:i + 1] == b"#":
                while i < len(data) and data[i:i + 1] not in (b"\n", b"\r"):
                    i += 1
            else:
                i += 1
        j = i
        while j < len(data) and data[j:j + 1].isdigit():
            j += 1
        if j == i:
            raise ValueError(f"{path}: malformed PNM header")
        fields.append(int(data[i:j]))
        i = j
    if i >= len(data) or not data[i:i + 1].isspace():
        raise ValueError(f"{path}: no whitespace after maxval")
    i += 1
    w, h, maxval = fields
    channels = 1 if magic == b"P5" else 3
    dtype = ">u2" if maxval > 255 else "u1"
    size = w * h * channels * (2 if maxval > 255 else 1)
    raster = data[i:]
    if len(raster) != size:
        raise ValueError(f"{path}: raster is {len(raster)} bytes, expected {size} for {w}x{h}")
    a = np.frombuffer(raster, dtype=dtype).astype(np.int64)
    a = a.reshape((h, w) if channels == 1 else (h, w, 3))
    return a, maxval


# --- test images ---

def make_image(rng, w, h, channels, maxval):
    """Smooth gradient + a rectangle and a disc (hard edges) + noise, clipped to 0..maxval."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(channels):
        gx = x / max(w - 1, 1)
        gy = y / max(h - 1, 1)
        p = 0.15 + 0.5 * (gx if c % 2 == 0 else gy) + 0.1 * np.sin(2 * math.pi * (gx + gy + c / 3))
        x0, x1 = int(w * 0.2), int(w * 0.55) + 1
        y0, y1 = int(h * 0.25), int(h * 0.6) + 1
        p[y0:y1, x0:x1] += 0.3 - 0.15 * c
        cx, cy, r = w * 0.7, h * 0.65, max(min(w, h) * 0.2, 1.0)
        p[(x - cx) ** 2 + (y - cy) ** 2 <= r * r] -= 0.35
        p += rng.normal(0, 0.04, size=p.shape)
        planes.append(p)
    a = np.stack(planes, axis=-1) if channels > 1 else planes[0]
    return np.clip(np.rint(a * maxval), 0, maxval).astype(np.int64)


# (name, width, height, channels, maxval). noise16 is full-range 16-bit noise (each sample 0 or
# 65535), the hardest case for blur's fixed-point weights: with 2^16 weight units it was 2 or
# more away from scipy; with 2^24 (image_ops.hpp) it must be within 1.
IMAGES = [
    ("noise16.pgm", 64, 64, 1, 65535),
    ("rgb64x48.ppm", 64, 48, 3, 255),
    ("gray64x48.pgm", 64, 48, 1, 255),
    ("rgb33x17.ppm", 33, 17, 3, 255),
    ("gray1x9.pgm", 1, 9, 1, 255),
    ("rgb9x1.ppm", 9, 1, 3, 255),
    ("rgb200x150.ppm", 200, 150, 3, 255),
    ("deep64x48.pgm", 64, 48, 1, 65535),
    ("deep33x17.pgm", 33, 17, 1, 65535),
]


# --- references (float64, rounded half up to an integer after each op, clamped to maxval) ---

def rnd(a, maxval):
    return np.clip(np.floor(a + 0.5), 0, maxval).astype(np.int64)


def per_channel(f, a):
    if a.ndim == 2:
        return f(a)
    return np.stack([f(a[..., c]) for c in range(a.shape[2])], axis=-1)


def ref_gray(a, maxval):
    if a.ndim == 2:
        return a
    # The exact luma is a multiple of 1/1000, so its halves are true ties that float arithmetic
    # puts on either side; 1e-6 (far below the 1/1000 step) rounds them up, as the definition does.
    y = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return rnd(y + 1e-6, maxval)


def ref_blur(a, maxval, sigma):
    radius = math.ceil(3 * sigma)
    truncate = radius / sigma  # scipy's radius int(truncate * sigma + 0.5) is then ceil(3 sigma)
    assert int(truncate * sigma + 0.5) == radius
    return per_channel(lambda p: rnd(ndimage.gaussian_filter(
        p.astype(np.float64), sigma, mode="nearest", truncate=truncate), maxval), a)


def ref_sobel(a, maxval):
    def one(p):
        p = p.astype(np.float64)
        gx = ndimage.sobel(p, axis=1, mode="nearest")
        gy = ndimage.sobel(p, axis=0, mode="nearest")
        return rnd(np.hypot(gx, gy), maxval)
    return per_channel(one, a)


def area_matrix(n, m):
    """(m, n) weights of an exact area average: output i covers [i n/m, (i+1) n/m)."""
    mat = np.zeros((m, n))
    s = n / m
    for i in range(m):
        lo, hi = i * s, (i + 1) * s
        for j in range(int(math.floor(lo)), min(n, int(math.ceil(hi)))):
            mat[i, j] = max(0.0, min(hi, j + 1) - max(lo, j)) / s
    return mat


def ref_resize(a, maxval, factor):
    h, w = a.shape[:2]
    w2 = max(1, int(math.floor(w * factor + 0.5)))
    h2 = max(1, int(math.floor(h * factor + 0.5)))
    if w2 <= w and h2 <= h:
        if w % 2 == 0 and h % 2 == 0 and w2 * 2 == w and h2 * 2 == h:
            # 2x2 block means (then hetpipe's two rounded passes agree with this to within 1)
            def one(p):
                return rnd(p.astype(np.float64).reshape(h2, 2, w2, 2).mean(axis=(1, 3)), maxval)
        else:
            mh, mw = area_matrix(h, h2), area_matrix(w, w2)

            def one(p):
                return rnd(mh @ p.astype(np.float64) @ mw.T, maxval)
        return per_channel(one, a)
    assert w2 >= w and h2 >= h, "mixed up/down scaling is not tested here"
    # bilinear with pixel centres: source coordinate (i + 1/2) n/m - 1/2, clamped to the edge
    cy = np.clip((np.arange(h2) + 0.5) * h / h2 - 0.5, 0, h - 1)
    cx = np.clip((np.arange(w2) + 0.5) * w / w2 - 0.5, 0, w - 1)
    yy, xx = np.meshgrid(cy, cx, indexing="ij")
    coords = np.array([yy, xx])
    return per_channel(lambda p: rnd(ndimage.map_coordinates(
        p.astype(np.float64), coords, order=1, mode="nearest"), maxval), a)


def ref_invert(a, maxval):
    return maxval - a


def ref_threshold(a, maxval, t):
    return np.where(a >= t, maxval, 0).astype(np.int64)


def reference(chain, a, maxval):
    for item in chain.split(","):
        name, _, arg = item.partition(":")
        if name == "gray":
            a = ref_gray(a, maxval)
        elif name == "blur":
            a = ref_blur(a, maxval, float(arg.partition("=")[2] if "=" in arg else arg))
        elif name == "sobel":
            a = ref_sobel(a, maxval)
        elif name == "resize":
            a = ref_resize(a, maxval, float(arg))
        elif name == "invert":
            a = ref_invert(a, maxval)
        elif name == "threshold":
            a = ref_threshold(a, maxval, int(arg))
        else:
            raise ValueError(f"no reference for {item}")
    return a


# Tolerance of one op against its reference applied to the same input: threshold and invert are
# exact; the others round a real number that hetpipe computes in fixed point, and may land on the
# other side of a half.
def op_tolerance(item):
    return 0 if item.split(":")[0] in ("invert", "threshold") else 1


# (ops, tolerance of the final output against the composed reference). A single op: +-1 (exact for
# invert and threshold). A chain is also checked one op at a time below, each op within its own
# tolerance of its reference applied to hetpipe's previous output; against the composed reference
# an early op's +-1 propagates: the gray reference is exact, blur is within 1, and sobel of an
# input perturbed by at most 1 moves gx and gy by at most 4 each, the magnitude by at most
# 4 sqrt(2) = 5.66, hence 6 after rounding.
CHAINS = [
    ("gray", 1),
    ("blur:sigma=0.7", 1),
    ("blur:sigma=1", 1),
    ("blur:sigma=1.5", 1),
    ("blur:sigma=2", 1),
    ("blur:sigma=5", 1),
    ("sobel", 1),
    ("gray,blur:sigma=2,sobel", 6),
    ("resize:0.5", 1),
    ("resize:2", 1),
    ("invert", 0),
    ("threshold:128", 0),
]


class Runner:
    def __init__(self, tmp, names):
        self.tmp, self.names, self.runs, self.failures = tmp, names, {}, 0

    def run(self, ops, indir):
        """hetpipe image --ops OPS over every test image in indir; the output folder, or None."""
        key = (ops, indir)
        if key not in self.runs:
            outdir = os.path.join(self.tmp, f"out{len(self.runs)}")
            cmd = [HETPIPE, "image", "--ops", ops, "-o", outdir, "--device", "cpu"]
            cmd += [os.path.join(indir, n) for n in self.names]
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL: {ops}: hetpipe exited {r.returncode}: {r.stderr.strip()}",
                      file=sys.stderr)
                self.failures += 1
                outdir = None
            self.runs[key] = outdir
        return self.runs[key]


def compare(label, got, got_max, want, maxval, tol):
    """Max |diff| of got against want, or None after printing why it failed."""
    if got_max != maxval or got.shape != want.shape:
        print(f"FAIL: {label}: output {got.shape} maxval {got_max}, expected {want.shape} "
              f"maxval {maxval}", file=sys.stderr)
        return None
    diff = np.abs(got - want)
    d = int(diff.max()) if diff.size else 0
    if d > tol:
        where = np.unravel_index(int(np.argmax(diff)), diff.shape)
        print(f"FAIL: {label}: max |diff| {d} > {tol}, {int((diff > tol).sum())} of {diff.size} "
              f"samples beyond it ({int((diff != 0).sum())} differ); worst at (row, col[, ch]) "
              f"{tuple(int(v) for v in where)}: hetpipe {int(got[where])}, reference "
              f"{int(want[where])}", file=sys.stderr)
        return None
    return d


def main():
    rng = np.random.RandomState(20240611)
    failures = 0
    comparisons = 0
    worst = 0
    per_check = {}  # check name -> max diff
    names = [n for n, *_ in IMAGES]

    def record(key, d):
        nonlocal failures, comparisons, worst
        if d is None:
            failures += 1
            return
        comparisons += 1
        worst = max(worst, d)
        per_check[key] = max(per_check.get(key, 0), d)

    def output(outdir, name, label):
        nonlocal failures
        try:
            return read_pnm(os.path.join(outdir, name))
        except (OSError, ValueError) as e:
            print(f"FAIL: {label}: cannot read the output: {e}", file=sys.stderr)
            failures += 1
            return None

    with tempfile.TemporaryDirectory(prefix="hetpipe-imgref-") as tmp:
        indir = os.path.join(tmp, "in")
        os.mkdir(indir)
        inputs = {}
        for name, w, h, channels, maxval in IMAGES:
            if name.startswith("noise"):
                a = (rng.rand(h, w) < 0.5).astype(np.int64) * maxval
            else:
                a = make_image(rng, w, h, channels, maxval)
            path = os.path.join(indir, name)
            write_pnm(path, a, maxval)
            back, mv = read_pnm(path)
            assert mv == maxval and np.array_equal(back, a)
            inputs[name] = (a, maxval)
        runner = Runner(tmp, names)

        for chain, tol in CHAINS:
            ops = chain.split(",")
            outdir = runner.run(chain, indir)
            if outdir is None:
                continue
            # the whole chain against the composed reference
            for name in names:
                a, maxval = inputs[name]
                got = output(outdir, name, f"{chain} on {name}")
                if got is not None:
                    record(chain, compare(f"{chain} on {name}", *got, reference(chain, a, maxval),
                                          maxval, tol))
            if len(ops) == 1:
                continue
            # one op at a time: op k of the chain against its reference applied to hetpipe's own
            # output of ops 1..k-1, and the same op run alone over those outputs gives the same
            # samples as the chain (integer samples between ops)
            for k in range(1, len(ops)):
                prev = runner.run(",".join(ops[:k]), indir)
                cur = runner.run(",".join(ops[:k + 1]), indir)
                alone = runner.run(ops[k], prev) if prev else None
                if prev is None or cur is None or alone is None:
                    continue
                for name in names:
                    label = f"{ops[k]} after {','.join(ops[:k])} on {name}"
                    before = output(prev, name, label)
                    got = output(cur, name, label)
                    sep = output(alone, name, label + " (run alone)")
                    if before is None or got is None or sep is None:
                        continue
                    want = reference(ops[k], before[0], before[1])
                    record(f"{chain}: step {ops[k]}",
                           compare(label, *got, want, before[1], op_tolerance(ops[k])))
                    record(f"{chain}: step {ops[k]} run alone",
                           compare(label + ", chain against the op run alone", *got, sep[0],
                                   before[1], 0))
        failures += runner.failures

    for key, d in per_check.items():
        print(f"  {key}: max diff {d}")
    if failures:
        print(f"image reference: {failures} failed", file=sys.stderr)
        return 1
    print(f"image reference: {comparisons} comparisons, max diff {worst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
