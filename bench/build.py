#!/usr/bin/env python3
"""Build benchmark: flashsale and Hugo on the same generated sale, in the same
run, in the two states a user builds in:

  clean after delete   `rm -rf public` (Hugo: public and resources), then build:
                       what `make clean`, a theme change or a reused CI runner does;
  fresh directory      build into an output directory never used before;
  no change            (flashsale) build again with nothing changed.

Rounds alternate the tools (clean flashsale, fresh flashsale, clean Hugo, fresh
Hugo), so both see the same file system state; the median of the rounds is
reported, with peak memory (wait4's rusage of the builder alone).

Goals: flashsale clean-after-delete within 1.3x its fresh-directory build,
<= 0.25x Hugo's clean-after-delete, < 150 MiB.

    bench/build.py WORK_DIR ROUNDS
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("FLASHSALE_BIN") or os.path.join(ROOT, "target", "release", "flashsale")


def timed(cmd, cwd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed: {p.stderr.read().decode()}")
    return {"wall": wall, "sys": ru.ru_stime, "user": ru.ru_utime, "peak_mib": ru.ru_maxrss / 1024}


def main():
    work, rounds = sys.argv[1], int(sys.argv[2])
    sale, hugo = os.path.join(work, "sale"), os.path.join(work, "hugo")
    with open(os.path.join(sale, "site.toml")) as f:
        base = f.read()
    runs = {k: [] for k in ("fs clean", "fs fresh", "fs noop", "hugo clean", "hugo fresh")}
    fresh = []
    # Warm the page cache and both outputs once.
    timed([BIN, "-q", "build"], sale)
    timed(["hugo", "--quiet"], hugo)
    for r in range(rounds):
        shutil.rmtree(os.path.join(sale, "public"))
        runs["fs clean"].append(timed([BIN, "-q", "build"], sale))
        runs["fs noop"].append(timed([BIN, "-q", "build"], sale))
        name = f"fresh-{os.getpid()}-{r}"
        conf = os.path.join(sale, f"{name}.toml")
        with open(conf, "w") as f:
            f.write(base.replace('name = "bench"', f'name = "bench"\noutput_dir = "{name}"', 1))
        fresh += [os.path.join(sale, name), conf]
        runs["fs fresh"].append(timed([BIN, "-q", "-c", conf, "build"], sale))
        shutil.rmtree(os.path.join(hugo, "public"))
        shutil.rmtree(os.path.join(hugo, "resources"), ignore_errors=True)
        runs["hugo clean"].append(timed(["hugo", "--quiet"], hugo))
        fresh.append(os.path.join(hugo, name))
        runs["hugo fresh"].append(timed(["hugo", "--quiet", "--destination", name], hugo))
    for p in fresh:
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    med = {k: {m: statistics.median(x[m] for x in v) for m in ("wall", "sys", "user")} | {"peak_mib": max(x["peak_mib"] for x in v)}
           for k, v in runs.items()}
    print(json.dumps({"medians": med, "walls": {k: [round(x["wall"], 2) for x in v] for k, v in runs.items()}}))


if __name__ == "__main__":
    main()
