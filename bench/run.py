#!/usr/bin/env python3
"""Runs a command several times; prints the median wall time and peak RSS
(from wait4's rusage, so only that process and not this script is measured)."""
import json
import os
import statistics
import subprocess
import sys
import time


def measure(cmd, cwd, runs, before=None):
    times, peaks = [], []
    for _ in range(runs):
        if before:
            subprocess.run(before, cwd=cwd, shell=True, check=True)
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - t0
        if status != 0:
            sys.exit(f"{' '.join(cmd)} failed: {p.stderr.read().decode()}")
        times.append(elapsed)
        peaks.append(ru.ru_maxrss / 1024)  # KiB -> MiB
    return {"seconds": statistics.median(times), "peak_mib": max(peaks)}


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(json.dumps(measure(spec["cmd"], spec["cwd"], spec.get("runs", 3), spec.get("before"))))
