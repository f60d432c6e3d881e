#!/usr/bin/env python3
"""best_time.py REPS CMD [ARGS...]: runs the command REPS times (stdout discarded) and prints the
best wall-clock time in seconds. A failing run prints FAIL and exits 1."""
import subprocess
import sys
import time

reps = int(sys.argv[1])
best = float("inf")
for _ in range(reps):
    t = time.perf_counter()
    r = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        print("FAIL", r.stderr.decode(errors="replace").strip()[:200])
        sys.exit(1)
    best = min(best, dt)
print(f"{best:.4f}")
