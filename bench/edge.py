#!/usr/bin/env python3
"""Edge simulation: what a crowd of open pages does to the origin.

A real shared cache (Debian's Varnish) stands in for a CloudFront edge, in
front of moto standing in for the S3 bucket. The crowd is `flashsale rehearse
--viewers N`: N pages polling sale.js?v=<random> every 1-3 s (about N/2 polls
a second), latency counted from when each poll was due. Mid-run, a real
`flashsale open` PUTs the open toggle at the start second.

Two set-ups, in the same run, with the same crowd:
  flashsale   the README's CloudFront set-up: sale.js cached for its
              s-maxage=1 and never longer (the flashsale-toggle cache policy,
              MaxTTL 1), query string out of the cache key;
  peer        the previous advice (CachingDisabled): the cache passes every
              poll to the origin (a shorter run: the origin cannot keep up).

Prints polls/s at the cache, requests/s at the origin, the time from the PUT
to the last page seeing `open`, and the ratio of origin requests.
Goals: >= 10,000 polls/s for 30 s; origin <= 2/s per cache; last page sees
open <= 1 s + one poll interval (3 s) after the PUT.

    bench/edge.sh [VIEWERS] [SECONDS]
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "flashsale")
VENV = os.path.join(ROOT, "target", "moto", "bin")
BUCKET = "edge-bench"
ENV = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
           AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{url} never answered")


def vcl(origin_port, cache):
    store = 'return (hash);' if cache else 'return (pass);'
    return f"""vcl 4.1;
backend origin {{ .host = "127.0.0.1"; .port = "{origin_port}"; }}
sub vcl_recv {{
  set req.url = "/{BUCKET}" + regsub(req.url, "\\?.*$", "");
  unset req.http.Cookie;
  {store}
}}
sub vcl_hash {{ hash_data(req.url); return (lookup); }}
sub vcl_backend_response {{ set beresp.grace = 0s; if (beresp.ttl > 1s) {{ set beresp.ttl = 1s; }} }}
"""


class Varnish:
    def __init__(self, work, name, origin_port, cache):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        path = os.path.join(self.dir, "edge.vcl")
        with open(path, "w") as f:
            f.write(vcl(origin_port, cache))
        self.port = free_port()
        subprocess.run(["varnishd", "-a", f"127.0.0.1:{self.port}", "-f", path, "-n", os.path.join(self.dir, "work"),
                        "-s", "malloc,64m", "-P", os.path.join(self.dir, "pid")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{self.port}/sale.js")

    def counter(self, name):
        out = subprocess.run(["varnishstat", "-n", os.path.join(self.dir, "work"), "-1", "-f", name],
                             capture_output=True, text=True, check=True).stdout
        return int(out.split()[1])

    def stop(self):
        try:
            with open(os.path.join(self.dir, "pid")) as f:
                os.kill(int(f.read().strip()), 15)
        except (OSError, ValueError):
            pass


def write_sale(work, endpoint, start):
    sale = os.path.join(work, "sale")
    os.makedirs(os.path.join(sale, "items"), exist_ok=True)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    with open(os.path.join(sale, "site.toml"), "w") as f:
        f.write(f'name = "edge-bench"\nbase_url = "https://sale.example.com/"\nstart = {start.strftime(fmt)}\n'
                f'end = {(start + timedelta(hours=1)).strftime(fmt)}\ncurrency = "EUR"\nitems_dir = "items"\n\n'
                f'[gate]\nurl = "https://gate.example.com"\n\n'
                f'[publish]\nbucket = "{BUCKET}"\nregion = "us-east-1"\nendpoint = "{endpoint}"\n')
    with open(os.path.join(sale, "items", "a.md"), "w") as f:
        f.write('+++\nsku = "EDGE-1"\ntitle = "Edge item"\nprice = 1\nstock = 100\n+++\nA thing.\n')
    subprocess.run([BIN, "-q", "keygen", "gate.key"], cwd=sale, check=True)
    return sale


def aws(endpoint, *args):
    subprocess.run([os.path.join(VENV, "aws"), "--endpoint-url", endpoint, *args], env=ENV, check=True,
                   stdout=subprocess.DEVNULL)


def crowd(sale, url, viewers, seconds):
    return subprocess.Popen([BIN, "rehearse", "--json", "--url", url, "--viewers", str(viewers), "--duration",
                             f"{seconds}s", "--concurrency", "512"], cwd=sale, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(p):
    out, err = p.communicate()
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        sys.exit(f"rehearse failed: {err}")


def main():
    viewers = int(sys.argv[1]) if len(sys.argv) > 1 else 24000
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    work = os.path.join(ROOT, "target", "bench-edge")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([os.path.join(VENV, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    caches = []
    try:
        wait_http(f"{endpoint}/moto-api/")
        aws(endpoint, "s3api", "create-bucket", "--bucket", BUCKET)
        # CloudFront reads the bucket through an origin access control; the
        # cache here reads without signing, so a bucket policy lets it.
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                          "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}
        aws(endpoint, "s3api", "put-bucket-policy", "--bucket", BUCKET, "--policy", json.dumps(policy))
        # The start: half-way through the run, on a whole second.
        start = (datetime.now(timezone.utc) + timedelta(seconds=seconds // 2 + 8)).replace(microsecond=0)
        sale = write_sale(work, endpoint, start)
        subprocess.run([BIN, "-q", "build"], cwd=sale, check=True)
        subprocess.run([BIN, "-q", "publish"], cwd=sale, check=True, env=ENV)
        edge = Varnish(work, "edge", port, cache=True)
        caches.append(edge)
        wait = (start - datetime.now(timezone.utc)).total_seconds() - seconds / 2
        if wait > 0:
            time.sleep(wait)
        before = edge.counter("MAIN.backend_req")
        c = crowd(sale, f"http://127.0.0.1:{edge.port}/", viewers, seconds)
        opened = subprocess.run([BIN, "open", "--json", "--key-file", "gate.key"], cwd=sale, env=ENV,
                                capture_output=True, text=True)
        if opened.returncode != 0:
            sys.exit(f"open failed: {opened.stderr}")
        put = datetime.fromisoformat(json.loads(opened.stdout)["switched"].replace("Z", "+00:00")).timestamp() * 1000
        r = finish(c)
        origin = edge.counter("MAIN.backend_req") - before

        # The peer: every poll passed to the origin, the same crowd for a third of the time.
        peer_seconds = max(10, seconds // 3)
        peer = Varnish(work, "peer", port, cache=False)
        caches.append(peer)
        p_before = peer.counter("MAIN.backend_req")
        p = finish(crowd(sale, f"http://127.0.0.1:{peer.port}/", viewers, peer_seconds))
        p_origin = peer.counter("MAIN.backend_req") - p_before
    finally:
        for v in caches:
            v.stop()
        moto.terminate()
        moto.wait()

    last = r["last_switch_unix_ms"]
    switch_ms = (last - put) if last else None
    print(f"\n{viewers:,} simulated pages polling sale.js every 1-3 s through Varnish 7.1 (1 cache) in front of moto;"
          f" `flashsale open` at {start.strftime('%H:%M:%S')} UTC; 2-core machine, everything on loopback")
    print(f"{'set-up':10} {'seconds':>7} {'polls/s at cache':>17} {'p50':>8} {'p99':>9} {'errors':>7} {'origin req/s':>13}")
    print(f"{'flashsale':10} {seconds:7d} {r['polls_per_second']:17,.0f} {r['latency']['p50_ms']:6.1f}ms "
          f"{r['latency']['p99_ms']:7.1f}ms {r['errors']:7d} {origin / seconds:13.2f}")
    print(f"{'peer':10} {peer_seconds:7d} {p['polls_per_second']:17,.0f} {p['latency']['p50_ms']:6.1f}ms "
          f"{p['latency']['p99_ms']:7.1f}ms {p['errors']:7d} {p_origin / peer_seconds:13.2f}")
    print(f"flashsale: {r['pages_switched']:,} of {viewers:,} pages saw `open`; the last {switch_ms:,.0f} ms after the PUT"
          if switch_ms is not None else "flashsale: no page saw `open`")
    print(f"origin requests per poll: flashsale {origin / max(1, r['polls']):.5f}, peer {p_origin / max(1, p['polls']):.3f};"
          f" ratio {(origin / max(1, r['polls'])) / max(1e-9, p_origin / max(1, p['polls'])):.4f}")
    ok = (r["polls_per_second"] >= 10_000 and origin / seconds <= 2.0 and switch_ms is not None
          and switch_ms <= 4_000 and r["pages_switched"] == viewers and r["errors"] == 0)
    print(f"goals (>= 10,000 polls/s, origin <= 2/s, every page sees open <= 4,000 ms after the PUT): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
