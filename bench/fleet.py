#!/usr/bin/env python3
"""Fleet benchmark: two gates on a shared Redis ledger against the same two
gates in local mode (each its own quota), in the same run, with the same load
generator (wrk, a new customer per request, half the connections per gate).

Two paths, each measured in both modes:
  rush      the stock is large enough never to sell out during the run:
            every request is an atomic step in the ledger (or a local count);
  sold out  the stock (100) is sold before measuring: every request is a loser
            answered by the gate alone.

Prints requests/s (both gates together), p50/p99 (the worse gate), and Redis
calls per request: the gates' own count of calls made to answer requests, and
every command Redis executed (polls and heartbeats included).
Goals: sold-out path >= 0.9x local mode; rush path >= 0.5x local mode with
p99 < 10 ms.

    bench/fleet.sh [SECONDS] [CONNECTIONS]
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "flashsale")
LUA = os.path.join(ROOT, "bench", "gate.lua")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], check=True, capture_output=True, text=True).stdout


def start_gate(sale, args):
    p = subprocess.Popen([BIN, "gate", "--listen", "127.0.0.1:0", "--key-file", "gate.key", *args], cwd=sale,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    m = re.search(r"http://([0-9.:]+)/", line)
    if not m:
        p.kill()
        sys.exit(f"gate did not start: {line!r}")
    return p, m.group(1)


def wait_healthy(addr):
    deadline = time.time() + 10
    while time.time() < deadline:
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://{addr}/healthz"],
                             capture_output=True, text=True).stdout
        if out == "200":
            return
        time.sleep(0.05)
    sys.exit(f"gate {addr} never became healthy")


def metric(addr, name, label=""):
    out = subprocess.run(["curl", "-s", f"http://{addr}/metrics"], capture_output=True, text=True).stdout
    return sum(float(l.rsplit(" ", 1)[1]) for l in out.splitlines() if l.startswith(name) and label in l)


def wrk_all(urls, seconds, conns):
    """One wrk per gate, at the same time; returns summed rps and the worse percentiles."""
    procs = [subprocess.Popen(["wrk", "-t1", f"-c{max(1, conns // len(urls))}", f"-d{seconds}s", "--latency", "-s", LUA, u],
                              stdout=subprocess.PIPE, text=True) for u in urls]
    outs = [p.communicate()[0] for p in procs]

    def pct(out, p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    return {
        "rps": sum(float(re.search(r"Requests/sec:\s+([\d.]+)", o).group(1)) for o in outs),
        "p50": max(pct(o, 50) for o in outs),
        "p99": max(pct(o, 99) for o in outs),
        "non2xx": sum(int(m.group(1)) for o in outs for m in [re.search(r"Non-2xx or 3xx responses: (\d+)", o)] if m),
    }


def write_sale(work, stock):
    sale = os.path.join(work, "sale")
    os.makedirs(os.path.join(sale, "items"), exist_ok=True)
    now = datetime.now(timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    with open(os.path.join(sale, "site.toml"), "w") as f:
        f.write(f'name = "bench"\nbase_url = "https://sale.example.com/"\nstart = {(now - timedelta(minutes=1)).strftime(fmt)}\n'
                f'end = {(now + timedelta(hours=1)).strftime(fmt)}\ncurrency = "EUR"\nitems_dir = "items"\n\n[gate]\nurl = "http://127.0.0.1"\n')
    with open(os.path.join(sale, "items", "bench.md"), "w") as f:
        f.write(f'+++\nsku = "BENCH-1"\ntitle = "Benchmark item"\nprice = 1\nstock = {stock}\n+++\nA thing.\n')
    if not os.path.exists(os.path.join(sale, "gate.key")):
        subprocess.run([BIN, "-q", "keygen", "gate.key"], cwd=sale, check=True)
    return sale


def run(work, mode, path, seconds, conns, redis_port):
    stock = 10_000_000 if path == "rush" else 100
    sale = write_sale(work, stock)
    ledger = f"redis://127.0.0.1:{redis_port}/0"
    if mode == "ledger":
        redis_cli(redis_port, "FLUSHALL")
        subprocess.run([BIN, "-q", "ledger", "load", "--ledger", ledger], cwd=sale, check=True)
    gates = []
    for i in (1, 2):
        journal = os.path.join(work, f"journal-{mode}-{path}-{i}")
        shutil.rmtree(journal, ignore_errors=True)
        extra = ["--ledger", ledger] if mode == "ledger" else ["--quota", str(stock // 2)]
        gates.append(start_gate(sale, ["--journal", journal, "--gate-id", f"g{i}", *extra]))
    try:
        for _, addr in gates:
            wait_healthy(addr)
        subprocess.run([BIN, "-q", "open", "--now", "--target", f"dir:{work}/remote", "--key-file", "gate.key"], cwd=sale,
                       check=True, stdout=subprocess.DEVNULL)
        token = re.search(r"/o/bench/([0-9a-f.]+)", open(os.path.join(work, "remote", "sale.js")).read()).group(1)
        urls = [f"http://{addr}/o/bench/{token}" for _, addr in gates]
        if path == "sold out":
            wrk_all(urls, 2, conns)  # sells the 100 units; the measured run is all losers
        before_calls = sum(metric(a, "flashsale_gate_ledger_calls_total", 'kind="admission"') for _, a in gates)
        before_reqs = sum(metric(a, "flashsale_gate_requests_total") for _, a in gates)
        before_cmds = int(re.search(r"total_commands_processed:(\d+)", redis_cli(redis_port, "INFO", "stats")).group(1))
        r = wrk_all(urls, seconds, conns)
        calls = sum(metric(a, "flashsale_gate_ledger_calls_total", 'kind="admission"') for _, a in gates) - before_calls
        reqs = sum(metric(a, "flashsale_gate_requests_total") for _, a in gates) - before_reqs
        cmds = int(re.search(r"total_commands_processed:(\d+)", redis_cli(redis_port, "INFO", "stats")).group(1)) - before_cmds
        r["calls_per_request"] = calls / reqs if reqs else 0.0
        r["commands_per_request"] = (cmds / reqs if reqs else 0.0) if mode == "ledger" else 0.0
        r["requests"] = reqs
        return r
    finally:
        for p, _ in gates:
            p.terminate()
            p.wait()


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    # Journals and Redis's AOF on the real disk: fsync on tmpfs would cost nothing.
    work = os.path.join(ROOT, "target", "bench-fleet")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", work, "--save", "",
                              "--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if "PONG" in redis_cli(port, "PING"):
                    break
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        rows = {}
        for path in ("rush", "sold out"):
            for mode in ("local", "ledger"):
                rows[(path, mode)] = run(work, mode, path, seconds, conns, port)
    finally:
        redis.terminate()
        redis.wait()
    print(f"\n2 gates, wrk -t1 -c{conns // 2} -d{seconds}s per gate, a new customer per request, on loopback;"
          f" journals and Redis AOF (appendfsync always) on {work}")
    print(f"{'path':9} {'mode':7} {'requests/s':>11} {'p50':>9} {'p99':>9} {'ledger calls/req':>17} {'Redis cmds/req':>15}")
    for (path, mode), r in rows.items():
        print(f"{path:9} {mode:7} {r['rps']:11.0f} {r['p50']:7.2f}ms {r['p99']:7.2f}ms {r['calls_per_request']:17.4f} {r['commands_per_request']:15.4f}")
    rush = rows[("rush", "ledger")]["rps"] / rows[("rush", "local")]["rps"]
    sold = rows[("sold out", "ledger")]["rps"] / rows[("sold out", "local")]["rps"]
    p99 = rows[("rush", "ledger")]["p99"]
    print(f"ledger / local requests/s: rush {rush:.2f} (goal >= 0.5, p99 {p99:.2f} ms, goal < 10), sold out {sold:.2f} (goal >= 0.9)")
    ok = rush >= 0.5 and p99 < 10 and sold >= 0.9
    print(f"goals: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
