#!/usr/bin/env python3
"""Writes the small sample dataset in samples/data (committed; re-running gives the same bytes).

  weather.npy    2-D float64, 40 000 hourly rows x 4 columns: temperature (C), relative
                 humidity (%), pressure (hPa), wind speed (m/s) of a made-up station, with a few
                 missing readings stored as NaN.
  latency.npy    1-D float32, 250 000 request latencies (ms), log-normal with rare timeouts.
  counts.u16     raw little-endian uint16, 300 000 photon counts (Poisson-like); read it with
                 --dtype u16.
  stations.csv   CSV with a header, 12 000 daily records of 4 made-up stations: station name,
                 date, temperature (C), rainfall (mm; empty where missing), a quoted note (some
                 hold a line break); pick the numeric columns with --columns.

Only the standard library is used, so the script runs anywhere python3 does.
"""
import array
import math
import random
import struct
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data"


def npy(path, descr, shape, values):
    shape_text = "(%d,)" % shape[0] if len(shape) == 1 else "(%s)" % ", ".join(map(str, shape))
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    pad = (64 - (10 + len(header) + 1) % 64) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        if sys.byteorder != "little":
            values.byteswap()
        f.write(values.tobytes())


def main():
    OUT.mkdir(exist_ok=True)
    rng = random.Random(20261125)
    rows = 40_000
    w = array.array("d")
    for h in range(rows):
        day = h / 24.0
        temp = 11 + 9 * math.sin(2 * math.pi * (day - 110) / 365.25) \
            + 4 * math.sin(2 * math.pi * (h % 24 - 9) / 24) + rng.gauss(0, 1.5)
        hum = min(100.0, max(5.0, 70 - 1.5 * (temp - 11) + rng.gauss(0, 8)))
        pres = 1013.25 + 8 * math.sin(2 * math.pi * day / 9.3) + rng.gauss(0, 2)
        wind = abs(rng.gauss(3.5, 2.2))
        row = [temp, hum, pres, wind]
        if rng.random() < 0.002:
            row[rng.randrange(4)] = float("nan")
        w.extend(row)
    npy(OUT / "weather.npy", "<f8", (rows, 4), w)

    lat = array.array("f")
    for _ in range(250_000):
        lat.append(30000.0 if rng.random() < 1e-4 else rng.lognormvariate(math.log(12), 0.6))
    npy(OUT / "latency.npy", "<f4", (len(lat),), lat)

    counts = array.array("H")
    for _ in range(300_000):
        lam = 40.0
        counts.append(max(0, min(65535, int(round(rng.gauss(lam, math.sqrt(lam)))))))
    if sys.byteorder != "little":
        counts.byteswap()
    (OUT / "counts.u16").write_bytes(counts.tobytes())

    # Its own generator: the files above keep their bytes.
    crng = random.Random(20261129)
    lines = ["station,date,temp_c,rain_mm,note"]
    notes = ["", "", "", "\"windy, dry\"", "\"sensor \"\"B\"\" swapped\"", "\"calm,\nthen rain\""]
    for day in range(3000):
        y, d = 2018 + day // 365, day % 365
        date = "%d-%02d-%02d" % (y, 1 + d // 31 % 12, 1 + d % 28)
        for k, name in enumerate(["Aberdeen", "Bergen", "Cork", "Dundee"]):
            temp = 9 + 7 * math.sin(2 * math.pi * (d - 110) / 365.25) + k + crng.gauss(0, 2.5)
            rain = "" if crng.random() < 0.01 else "%.1f" % max(0.0, crng.gauss(1.2, 3.0))
            lines.append("%s,%s,%.2f,%s,%s" % (name, date, temp, rain, crng.choice(notes)))
    (OUT / "stations.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
