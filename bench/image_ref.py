#!/usr/bin/env python3
"""image_ref.py DIR_IN DIR_OUT THREADS: the OpenCV reference of bench/image.sh, the chain
`gray,blur:sigma=2,sobel` over every *.ppm / *.pgm / *.png in DIR_IN, each result written to
DIR_OUT under the same name as 8-bit binary PGM (as hetpipe writes a gray result of a .ppm input:
P5 under the input's name; OpenCV's own writer refuses gray data in a .ppm name), or as 8-bit
gray PNG at zlib level 6 for a .png input (hetpipe's default --png-level).

Per image: imread (unchanged), BGR -> gray when 3 channels, GaussianBlur sigma 2 (ksize from
sigma: radius 6, as hetpipe's ceil(3 sigma)), Sobel dx and dy (ksize 3, float32), magnitude, then
saturated to uint8 (clip 0..255, rounded). Every border is replicated, like hetpipe's. A pool of
THREADS workers takes the files (cv2 releases the GIL) and cv2 uses THREADS threads inside calls.
Exit status 1 when an image cannot be read or written, 3 when cv2 is missing."""
import os
import sys
from multiprocessing.pool import ThreadPool

try:
    import cv2
except ImportError:
    print("image_ref.py: OpenCV (python3 module cv2) is not available", file=sys.stderr)
    sys.exit(3)

BORDER = cv2.BORDER_REPLICATE


def one(src, dst):
    im = cv2.imread(src, cv2.IMREAD_UNCHANGED)
    if im is None:
        raise RuntimeError(f"{src}: cv2.imread failed")
    if im.ndim == 3:
        im = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
    blur = cv2.GaussianBlur(im, (0, 0), 2, borderType=BORDER)
    gx = cv2.Sobel(blur, cv2.CV_32F, 1, 0, ksize=3, borderType=BORDER)
    gy = cv2.Sobel(blur, cv2.CV_32F, 0, 1, ksize=3, borderType=BORDER)
    out = cv2.convertScaleAbs(cv2.magnitude(gx, gy))  # saturating: clip 0..255, uint8
    if src.lower().endswith(".png"):
        ok, data = cv2.imencode(".png", out, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    else:
        ok, data = cv2.imencode(".pgm", out)
    if not ok:
        raise RuntimeError(f"{dst}: cv2.imencode failed")
    with open(dst, "wb") as f:
        f.write(data)


def main():
    if len(sys.argv) != 4:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    din, dout, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cv2.setNumThreads(threads)
    names = sorted(n for n in os.listdir(din) if n.lower().endswith((".ppm", ".pgm", ".png")))
    if not names:
        print(f"image_ref.py: no *.ppm, *.pgm or *.png in {din}", file=sys.stderr)
        return 1
    os.makedirs(dout, exist_ok=True)
    with ThreadPool(threads) as pool:
        # chunksize 1: images are large, and a worker should not hold a queue of them
        for _ in pool.imap_unordered(lambda n: one(os.path.join(din, n), os.path.join(dout, n)),
                                     names, chunksize=1):
            pass
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError) as e:
        print(f"image_ref.py: {e}", file=sys.stderr)
        sys.exit(1)
