#!/usr/bin/env python3
"""Gate load benchmark: wrk (distinct user ids per request) against the order
gate (quota 1,000, journal fsynced on disk) and against a minimal hyper server
answering a fixed 200, in the same run on the same machine. Prints requests/s,
p50/p99 latency, and the winners counted from the journal.
Goal: the gate reaches >= 70% of the minimal server's requests/s, p99 < 10 ms
at 64 connections, and exactly 1,000 winners.

    bench/gate.sh [SECONDS] [CONNECTIONS]
"""
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "flashsale")
PEER = os.path.join(ROOT, "target", "release", "examples", "minimal_http")


def start(cmd, cwd, marker):
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    m = re.search(r"http://([0-9.:]+)/", line)
    if marker not in line or not m:
        p.kill()
        sys.exit(f"{cmd[0]} did not start: {line!r}")
    return p, m.group(1)


def wrk(url, seconds, conns):
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", os.path.join(ROOT, "bench", "gate.lua"), url],
                         check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": pct(50), "p99": pct(99), "non2xx": int(errors.group(1)) if errors else 0,
            "socket": socket.group(1) if socket else "none"}


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    # The journal on the real disk: fsync on tmpfs would cost nothing.
    work = os.path.join(ROOT, "target", "bench-gate")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "sale", "items"))
    now = datetime.now(timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    with open(os.path.join(work, "sale", "site.toml"), "w") as f:
        f.write(f'name = "bench"\nbase_url = "https://sale.example.com/"\nstart = {(now - timedelta(minutes=1)).strftime(fmt)}\n'
                f'end = {(now + timedelta(hours=1)).strftime(fmt)}\ncurrency = "EUR"\nitems_dir = "items"\n\n[gate]\nurl = "http://127.0.0.1"\n')
    with open(os.path.join(work, "sale", "items", "bench.md"), "w") as f:
        f.write('+++\nsku = "BENCH-1"\ntitle = "Benchmark item"\nprice = 1\nstock = 1000\n+++\nA thing.\n')
    sale = os.path.join(work, "sale")
    subprocess.run([BIN, "-q", "keygen", "gate.key"], cwd=sale, check=True)
    journal = os.path.join(work, "journal")
    gate, addr = start([BIN, "gate", "--listen", "127.0.0.1:0", "--quota", "1000", "--journal", journal, "--key-file", "gate.key"],
                       sale, "Gate listening")
    try:
        # Mint the order URL the way `open` does (a directory target stands in for the bucket).
        subprocess.run([BIN, "-q", "open", "--now", "--target", f"dir:{work}/remote", "--key-file", "gate.key"], cwd=sale, check=True,
                       stdout=subprocess.DEVNULL)
        toggle = open(os.path.join(work, "remote", "sale.js")).read()
        token = re.search(r"/o/bench/([0-9a-f.]+)", toggle).group(1)
        g = wrk(f"http://{addr}/o/bench/{token}", seconds, conns)
    finally:
        gate.terminate()
        gate.wait()
    winners = sum(1 for _ in open(os.path.join(journal, "winners.jsonl")))
    peer, paddr = start([PEER, "127.0.0.1:0"], ROOT, "listening")
    try:
        m = wrk(f"http://{paddr}/o/bench/x", seconds, conns)
    finally:
        peer.terminate()
        peer.wait()
    print(f"\nwrk -t2 -c{conns} -d{seconds}s, a new user id per request, on loopback (load generator and server share the machine)")
    print(f"{'':34} {'requests/s':>11} {'p50':>9} {'p99':>9} {'non-2xx':>8}")
    print(f"{'gate (quota 1,000, journal on)':34} {g['rps']:11.0f} {g['p50']:7.2f}ms {g['p99']:7.2f}ms {g['non2xx']:8}")
    print(f"{'minimal hyper server (fixed 200)':34} {m['rps']:11.0f} {m['p50']:7.2f}ms {m['p99']:7.2f}ms {m['non2xx']:8}")
    ratio = g["rps"] / m["rps"]
    print(f"gate / minimal requests/s: {ratio:.2f}; winners in the journal: {winners}; socket errors: gate {g['socket']}, minimal {m['socket']}")
    ok = ratio >= 0.7 and g["p99"] < 10 and winners == 1000
    print(f"goal (>= 0.70 of the minimal server, p99 < 10 ms, exactly 1,000 winners): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
