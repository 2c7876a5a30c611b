"""Runs Lighthouse on the pages of a served sale and prints the scores.

    python3 bench/lighthouse.py BASE_URL RUNS LIGHTHOUSE_BIN

Each run is a fresh headless Chromium (Debian's, with the flags the test suite
uses) in Lighthouse's default mobile emulation. Prints one row per run, then
the lowest score of each category per page, and whether the goal (1.00 in all
four categories on every page) is met; exits 1 if not.
"""

import json
import os
import subprocess
import sys
import tempfile

# LH_PAGES="name=path name=path …" audits other pages (bench/lighthouse.sh SALE=…).
PAGES = [tuple(p.split("=", 1)) for p in os.environ["LH_PAGES"].split()] if os.environ.get("LH_PAGES") \
    else [("item", "items/mug-01/"), ("listing", ""), ("ended", "ended.html")]
CATEGORIES = ["performance", "accessibility", "best-practices", "seo"]
FLAGS = (
    "--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking "
    "--disable-component-update --disable-sync"
)


def audit(lighthouse, url):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        env = dict(os.environ, CHROME_PATH="/usr/bin/chromium")
        subprocess.run(
            [lighthouse, url, "--quiet", "--output=json", f"--output-path={out}",
             f"--chrome-flags={FLAGS} --user-data-dir={tmp}/profile"],
            env=env, check=True, timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        with open(out) as f:
            return json.load(f)


def main():
    base, runs, lighthouse = sys.argv[1].rstrip("/"), int(sys.argv[2]), sys.argv[3]
    print(f"{'page':<9} {'run':>3} " + " ".join(f"{c:>14}" for c in CATEGORIES) + f" {'CLS':>7} {'LCP':>8} {'bytes':>9}  notes")
    lowest = {}
    for name, path in PAGES:
        for run in range(1, runs + 1):
            r = audit(lighthouse, f"{base}/{path}")
            scores = [r["categories"][c]["score"] for c in CATEGORIES]
            cls = r["audits"]["cumulative-layout-shift"]["numericValue"]
            lcp = r["audits"]["largest-contentful-paint"]["numericValue"] / 1000
            kib = r["audits"]["total-byte-weight"]["numericValue"] / 1024
            # Opportunities Lighthouse lists without taking points off.
            notes = [
                f"{a}: {v.get('displayValue', '')}".strip()
                for a, v in r["audits"].items()
                if v.get("score") is not None and v["score"] < 1
                and v.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")
            ]
            print(f"{name:<9} {run:>3} " + " ".join(f"{s:>14.2f}" for s in scores)
                  + f" {cls:>7.4f} {lcp:>6.2f} s {kib:>5.1f} KiB  {'; '.join(notes)}")
            low = lowest.setdefault(name, scores + [cls])
            lowest[name] = [min(a, b) for a, b in zip(low[:4], scores)] + [max(low[4], cls)]
    print()
    print(f"{'lowest':<13} " + " ".join(f"{c:>14}" for c in CATEGORIES) + f" {'max CLS':>7}")
    met = True
    for name, _ in PAGES:
        row = lowest[name]
        met &= all(s >= 1.0 for s in row[:4])
        print(f"{name:<13} " + " ".join(f"{s:>14.2f}" for s in row[:4]) + f" {row[4]:>7.4f}")
    print()
    print("goal 1.00 in all four categories on every page:", "met" if met else "NOT met")
    sys.exit(0 if met else 1)


main()
