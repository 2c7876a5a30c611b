#!/usr/bin/env python3
"""Fleet benchmark: two gates on a shared Redis ledger against the same two
gates in local mode (each its own quota), in the same run, with the same load
generator (wrk, a new customer per request, half the connections per gate).
The ledger runs in three topologies, each on Debian's redis-server with AOF
(appendfsync always) on the real disk:
  single    one Redis node (no replica: no WAIT);
  sentinel  a primary, one replica and three Sentinels; `ledger_replicas = 1`:
            a winner is answered after `WAIT 1`;
  cluster   3 primaries and 3 replicas (cluster mode, as MemoryDB and
            ElastiCache run it); the gate probes the slot's replica: `WAIT 1`.
  single-shm  (an extra row, asked for by name, not a goal) the single node
            with its AOF on tmpfs (/dev/shm), standing in for a Redis on its
            own machine and disk: its fdatasync no longer queues behind the
            journals' on the one disk. The journals stay on the real disk.

Two paths, each measured in both modes:
  rush      the stock is large enough never to sell out during the run:
            every request is an atomic step in the ledger (or a local count);
  sold out  the stock (100) is sold before measuring: every request is a loser
            answered by the gate alone.

Prints requests/s (both gates together), p50/p99 (the worse gate), and Redis
calls per request: the gates' own count of calls made to answer requests, and
every command Redis executed (polls and heartbeats included).
Goals: sold-out path >= 0.9x local mode on every topology; rush path on the
single node >= 0.7x local mode with p99 < 10 ms, with WAIT 1 (sentinel,
cluster) >= 0.4x local mode with p99 < 15 ms.

    bench/fleet.sh [SECONDS] [CONNECTIONS] [TOPOLOGIES, comma-separated]
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
BIN = os.environ.get("FLASHSALE_BIN") or os.path.join(ROOT, "target", "release", "flashsale")
LUA = os.path.join(ROOT, "bench", "gate.lua")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], check=True, capture_output=True, text=True).stdout


def redis_node(work, name, *extra):
    """A redis-server with AOF always in work/name; returns (process, port)."""
    port = free_port()
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
                          "--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction",
                          "--repl-diskless-sync-delay", "0", "--logfile", os.path.join(d, "redis.log"), *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if "PONG" in redis_cli(port, "PING"):
                return p, port
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    sys.exit(f"redis-server {name} did not start")


def wait_until(what, check, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if check():
                return
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.1)
    sys.exit(f"waited {seconds}s for {what}")


class Topology:
    """Redis processes for one ledger topology: its URL, the [gate] lines
    it needs, and the primaries whose commands are counted."""

    def __init__(self, work, kind):
        self.kind, self.procs, self.primaries, self.gate_toml, self.cleanup = kind, [], [], "", None
        base = os.path.join(work, f"redis-{kind}")
        shutil.rmtree(base, ignore_errors=True)
        if kind in ("single", "single-shm"):
            if kind == "single-shm":
                # An extra row, not a goal: the AOF on tmpfs stands in for a
                # Redis on its own machine, whose fsync does not queue on the
                # gates' disk (as it does in "single").
                base = os.path.join("/dev/shm", f"flashsale-bench-{os.getpid()}-redis-{kind}")
                shutil.rmtree(base, ignore_errors=True)
                self.cleanup = base
            p, port = redis_node(base, "node")
            self.procs.append(p)
            self.primaries = [port]
            self.url = f"redis://127.0.0.1:{port}/0"
        elif kind == "sentinel":
            p, primary = redis_node(base, "primary")
            r, replica = redis_node(base, "replica", "--replicaof", "127.0.0.1", str(primary))
            self.procs += [p, r]
            wait_until("the replica in sync", lambda: "master_link_status:up" in redis_cli(replica, "INFO", "replication"))
            sentinels = []
            for i in range(3):
                sp = free_port()
                conf = os.path.join(base, f"sentinel-{i}.conf")
                with open(conf, "w") as f:
                    f.write(f"port {sp}\nbind 127.0.0.1\ndir {base}\nsentinel monitor mymaster 127.0.0.1 {primary} 2\n"
                            "sentinel down-after-milliseconds mymaster 2000\nsentinel failover-timeout mymaster 5000\n")
                self.procs.append(subprocess.Popen(["redis-server", conf, "--sentinel"], stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))
                sentinels.append(sp)
            wait_until("the Sentinels", lambda: all(
                str(primary) in redis_cli(sp, "SENTINEL", "get-master-addr-by-name", "mymaster") for sp in sentinels))
            self.settle([replica])
            self.primaries = [primary]
            self.url = "redis+sentinel://" + ",".join(f"127.0.0.1:{sp}" for sp in sentinels) + "/mymaster/0"
            self.gate_toml = "ledger_replicas = 1\n"
        elif kind == "cluster":
            ports = []
            for i in range(6):
                p, port = redis_node(base, f"node-{i}", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                     "--cluster-node-timeout", "2000", "--cluster-port", str(free_port()))
                self.procs.append(p)
                ports.append(port)
            subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas",
                            "1", "--cluster-yes"], check=True, stdout=subprocess.DEVNULL)
            wait_until("the cluster", lambda: all("cluster_state:ok" in redis_cli(p, "CLUSTER", "INFO") for p in ports))
            wait_until("the replicas in sync", lambda: all(
                "master_link_status:up" in i or "role:master" in i for i in (redis_cli(p, "INFO", "replication") for p in ports)))
            self.primaries = [p for p in ports if "role:master" in redis_cli(p, "INFO", "replication")]
            self.settle([p for p in ports if p not in self.primaries])
            self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
        else:
            sys.exit(f"unknown topology {kind!r}: single, sentinel, cluster or single-shm")

    def settle(self, replicas):
        """Waits until each replica has rewritten its AOF after its first sync
        (a replica with AOF does, and stalls its acks meanwhile)."""
        def done(p):
            i = redis_cli(p, "INFO", "persistence")
            return "aof_rewrites:0" not in i and "aof_rewrite_in_progress:0" in i and "aof_rewrite_scheduled:0" in i
        wait_until("the replicas' AOF rewrites", lambda: all(done(p) for p in replicas))

    def commands(self):
        return sum(int(re.search(r"total_commands_processed:(\d+)", redis_cli(p, "INFO", "stats")).group(1))
                   for p in self.primaries)

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()
        if self.cleanup:
            shutil.rmtree(self.cleanup, ignore_errors=True)


# A gate's admin listener (health, metrics) by its order address.
ADMIN = {}


def start_gate(sale, args, log):
    """A gate; its log (JSON lines) goes to `log`."""
    p = subprocess.Popen([BIN, "gate", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                          "--key-file", "gate.key", *args], cwd=sale,
                         stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    line = p.stdout.readline()
    m = re.search(r"http://([0-9.:]+)/.*admin on http://([0-9.:]+)/", line)
    if not m:
        p.kill()
        sys.exit(f"gate did not start: {line!r}")
    ADMIN[m.group(1)] = m.group(2)
    return p, m.group(1)


def wait_healthy(addr):
    deadline = time.time() + 10
    while time.time() < deadline:
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://{ADMIN[addr]}/healthz"],
                             capture_output=True, text=True).stdout
        if out == "200":
            return
        time.sleep(0.05)
    sys.exit(f"gate {addr} never became healthy")


def metric(addr, name, label=""):
    out = subprocess.run(["curl", "-s", f"http://{ADMIN[addr]}/metrics"], capture_output=True, text=True).stdout
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


def write_sale(work, stock, gate_toml=""):
    sale = os.path.join(work, "sale")
    os.makedirs(os.path.join(sale, "items"), exist_ok=True)
    now = datetime.now(timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    with open(os.path.join(sale, "site.toml"), "w") as f:
        f.write(f'name = "bench"\nbase_url = "https://sale.example.com/"\nstart = {(now - timedelta(minutes=1)).strftime(fmt)}\n'
                f'end = {(now + timedelta(hours=1)).strftime(fmt)}\ncurrency = "EUR"\nitems_dir = "items"\n\n[gate]\nurl = "http://127.0.0.1"\n'
                f'{gate_toml}')
    with open(os.path.join(sale, "items", "bench.md"), "w") as f:
        f.write(f'+++\nsku = "BENCH-1"\ntitle = "Benchmark item"\nprice = 1\nstock = {stock}\n+++\nA thing.\n')
    if not os.path.exists(os.path.join(sale, "gate.key")):
        subprocess.run([BIN, "-q", "keygen", "gate.key"], cwd=sale, check=True)
    return sale


def run(work, mode, path, seconds, conns, topology):
    """`mode` is "local" or a topology's kind (then `topology` is it)."""
    stock = 10_000_000 if path == "rush" else 100
    ledger = mode != "local"
    sale = write_sale(work, stock, topology.gate_toml if ledger else "")
    if ledger:
        subprocess.run([BIN, "-q", "ledger", "clear", "--yes", "--ledger", topology.url], cwd=sale, check=True)
        subprocess.run([BIN, "-q", "ledger", "load", "--ledger", topology.url], cwd=sale, check=True)
    gates = []
    for i in (1, 2):
        journal = os.path.join(work, f"journal-{mode}-{path}-{i}")
        shutil.rmtree(journal, ignore_errors=True)
        extra = ["--ledger", topology.url] if ledger else ["--quota", str(stock // 2)]
        log = os.path.join(work, f"gate-{mode}-{path.replace(' ', '-')}-{i}.log")
        gates.append(start_gate(sale, ["--journal", journal, "--gate-id", f"g{i}", *extra], log))
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
        before_cmds = topology.commands() if ledger else 0
        r = wrk_all(urls, seconds, conns)
        calls = sum(metric(a, "flashsale_gate_ledger_calls_total", 'kind="admission"') for _, a in gates) - before_calls
        reqs = sum(metric(a, "flashsale_gate_requests_total") for _, a in gates) - before_reqs
        cmds = topology.commands() - before_cmds if ledger else 0
        r["calls_per_request"] = calls / reqs if reqs else 0.0
        r["commands_per_request"] = cmds / reqs if reqs else 0.0
        r["requests"] = reqs
        return r
    finally:
        for p, _ in gates:
            p.terminate()
            p.wait()


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    kinds = (sys.argv[3] if len(sys.argv) > 3 else "single,sentinel,cluster").split(",")
    # Journals and Redis's AOF on the real disk: fsync on tmpfs would cost nothing.
    work = os.path.join(ROOT, "target", "bench-fleet")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    rows = {}
    for path in ("rush", "sold out"):
        rows[(path, "local")] = run(work, "local", path, seconds, conns, None)
        for kind in kinds:
            topology = Topology(work, kind)
            try:
                rows[(path, kind)] = run(work, kind, path, seconds, conns, topology)
            finally:
                topology.stop()
    print(f"\n2 gates, wrk -t1 -c{conns // 2} -d{seconds}s per gate, a new customer per request, on loopback;"
          f" journals and Redis AOF (appendfsync always) on {work}; {os.cpu_count()} CPUs")
    print(f"{'path':9} {'mode':9} {'requests/s':>11} {'p50':>9} {'p99':>9} {'ledger calls/req':>17} {'Redis cmds/req':>15} {'non-2xx':>8}")
    for (path, mode), r in rows.items():
        print(f"{path:9} {mode:9} {r['rps']:11.0f} {r['p50']:7.2f}ms {r['p99']:7.2f}ms {r['calls_per_request']:17.4f}"
              f" {r['commands_per_request']:15.4f} {r['non2xx']:8d}")
    ok = True
    for kind in kinds:
        rush = rows[("rush", kind)]["rps"] / rows[("rush", "local")]["rps"]
        sold = rows[("sold out", kind)]["rps"] / rows[("sold out", "local")]["rps"]
        p99 = rows[("rush", kind)]["p99"]
        floor, ceiling = (0.7, 10) if kind.startswith("single") else (0.4, 15)
        met = rush >= floor and p99 < ceiling and sold >= 0.9
        if kind != "single-shm":  # an extra row: Redis's disk is not the gates'
            ok = ok and met
        print(f"{kind:9} / local requests/s: rush {rush:.2f} (goal >= {floor}, p99 {p99:.2f} ms, goal < {ceiling}),"
              f" sold out {sold:.2f} (goal >= 0.9): {'met' if met else 'NOT met'}")
    print(f"goals: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
