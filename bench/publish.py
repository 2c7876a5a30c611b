#!/usr/bin/env python3
"""Publish benchmark: a 10,000-item sale published to a local S3 server (moto)
by `flashsale publish` and, on the same content and server in the same run, by
`aws s3 sync` (awscli). Three rounds, each after a fresh `flashsale build` as CI
would run it on a new checkout: first publish, no change, one item changed.
Prints times, objects uploaded, requests the server saw, and the ratios.
Goal: no-change and one-change re-publishes take at most 0.2x the time of
`aws s3 sync`, and no-change uploads nothing.

    bench/publish.sh [ITEMS]
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "moto", "bin")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    work = os.environ.get("BENCH_DIR") or ("/dev/shm/flashsale-publish" if os.path.isdir("/dev/shm") else os.path.join(ROOT, "bench", "work-publish"))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    flashsale = os.path.join(ROOT, "target", "release", "flashsale")
    print(f"== generating {items} items in {work}")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen.py"), str(items), work], check=True)
    sale = os.path.join(work, "sale")

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log_path = os.path.join(work, "moto.log")
    log = open(log_path, "w")
    moto = subprocess.Popen([os.path.join(VENV, "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=log)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
               AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        aws = [os.path.join(VENV, "aws"), "--endpoint-url", endpoint]
        for b in ("bench-flashsale", "bench-awscli"):
            subprocess.run(aws + ["s3api", "create-bucket", "--bucket", b], env=env, check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(sale, "site.toml"), "a") as f:
            f.write(f'\n[publish]\nbucket = "bench-flashsale"\nregion = "us-east-1"\nendpoint = "{endpoint}"\n')

        def requests():
            log.flush()
            with open(log_path) as f:
                return sum(1 for line in f if 'HTTP/1.1" ' in line)

        def timed(cmd, cwd):
            before = requests()
            t0 = time.perf_counter()
            out = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            time.sleep(0.3)  # let moto's log catch up
            return elapsed, requests() - before, out.stdout

        def fresh_build():
            shutil.rmtree(os.path.join(sale, "public"), ignore_errors=True)
            subprocess.run([flashsale, "-q", "build"], cwd=sale, check=True)

        rows = []
        for name in ("first publish", "no change", "one item changed"):
            if name == "one item changed":
                path = os.path.join(sale, "items", f"item-{items // 2:05d}.md")
                with open(path) as f:
                    text = f.read()
                with open(path, "w") as f:
                    f.write(text + "\nOne more sentence for the benchmark.\n")
            fresh_build()
            t_fs, r_fs, out = timed([flashsale, "publish", "--json"], sale)
            up_fs = len(json.loads(out)["uploaded"])
            t_aws, r_aws, out = timed(aws + ["s3", "sync", "public", "s3://bench-awscli", "--no-progress"], sale)
            up_aws = sum(1 for line in out.splitlines() if line.startswith("upload:"))
            rows.append((name, t_fs, up_fs, r_fs, t_aws, up_aws, r_aws))

        print(f"\n{'':18} {'flashsale publish':>32}   {'aws s3 sync':>32}   {'time':>6}")
        print(f"{'round':18} {'time':>9} {'uploaded':>10} {'requests':>10}   {'time':>9} {'uploaded':>10} {'requests':>10}   {'ratio':>6}")
        for name, t_fs, up_fs, r_fs, t_aws, up_aws, r_aws in rows:
            print(f"{name:18} {t_fs:8.2f}s {up_fs:10} {r_fs:10}   {t_aws:8.2f}s {up_aws:10} {r_aws:10}   {t_fs / t_aws:6.3f}")
        ok = all(r[1] / r[4] <= 0.2 for r in rows[1:]) and rows[1][2] == 0
        print(f"goal (re-publish time ratio <= 0.2, no-change uploads 0): {'met' if ok else 'NOT met'}")
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
