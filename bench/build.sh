#!/usr/bin/env bash
# Build benchmark: a 10,000-item sale built by flashsale and, with equivalent
# templates, by Hugo, in the same run, on the real disk by default. Prints, for
# both tools, the clean build after deleting the output and the build into a
# fresh directory (median of ROUNDS), flashsale's no-change build, peak memory
# and the ratios. See bench/build.py for the goals.
#
#   bench/build.sh [ITEMS] [ROUNDS]     (defaults 10000 and 5; needs Debian's `hugo`)
#   BENCH_TMPFS=1 bench/build.sh        (an extra measurement on tmpfs, /dev/shm)
#   BENCH_DIR=/some/dir bench/build.sh  (anywhere else)
#
# The default work directory is target/bench-build, on whatever disk holds
# this checkout: where a user's sale lives.

set -euo pipefail
cd "$(dirname "$0")/.."
items=${1:-10000}
rounds=${2:-5}
if [ -n "${BENCH_TMPFS:-}" ]; then BENCH_DIR=/dev/shm/flashsale-bench; fi
work=${BENCH_DIR:-$PWD/target/bench-build}
mkdir -p "$work"
fs=$(df -T "$work" | awk 'NR==2 {print $2}')
dev=$(df "$work" | awk 'NR==2 {print $1}')
journal=""
if [ "$fs" = ext4 ]; then
  name=$(basename "$dev")
  if [ -d "/proc/fs/jbd2" ] && ls /proc/fs/jbd2 2>/dev/null | grep -q "^$name"; then journal=", with a journal"; else journal=", without a journal"; fi
fi
echo "== work directory $work: $fs$journal on $dev"

command -v hugo >/dev/null || { echo "installing hugo (Debian package)"; apt-get install -y -qq hugo >/dev/null; }
cargo build --release --quiet
echo "== generating a sale of $items items"
rm -rf "$work" && mkdir -p "$work"
python3 bench/gen.py "$items" "$work"
echo "== $rounds rounds: rm -rf + build, build into a fresh directory, each tool in turn"
out=$(python3 bench/build.py "$work" "$rounds")
pages_fs=$(find "$work/sale/public" -name '*.html' | wc -l)
pages_hugo=$(find "$work/hugo/public" -name '*.html' | wc -l)

python3 - "$out" "$pages_fs" "$pages_hugo" "$(hugo version | cut -d' ' -f2)" "$fs$journal" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); m = r["medians"]
pf, ph, hv, fs = sys.argv[2:6]
print(f"\n{'median of rounds, ' + fs:44} {'wall':>8} {'sys':>8} {'user':>8} {'peak':>9}")
rows = [("flashsale, clean after rm -rf", "fs clean"), ("flashsale, fresh directory", "fs fresh"),
        ("flashsale, nothing changed", "fs noop"), (f"hugo {hv}, clean after rm -rf", "hugo clean"),
        (f"hugo {hv}, fresh directory", "hugo fresh")]
for label, k in rows:
    x = m[k]
    print(f"{label:44} {x['wall']:7.2f}s {x['sys']:7.2f}s {x['user']:7.2f}s {x['peak_mib']:5.0f} MiB")
print(f"walls: {json.dumps(r['walls'])}")
print(f"html pages: flashsale {pf}, hugo {ph}")
a = m["fs clean"]["wall"] / m["fs fresh"]["wall"]
b = m["fs clean"]["wall"] / m["hugo clean"]["wall"]
c = m["fs fresh"]["wall"] / m["hugo fresh"]["wall"]
peak = max(m[k]["peak_mib"] for k in ("fs clean", "fs fresh", "fs noop"))
print(f"flashsale clean-after-delete / fresh directory: {a:.2f} (goal <= 1.30)")
print(f"flashsale / hugo: clean after delete {b:.2f} (goal <= 0.25), fresh directory {c:.2f}; peak {peak:.0f} MiB (goal < 150)")
ok = a <= 1.3 and b <= 0.25 and peak < 150
print(f"goals: {'met' if ok else 'NOT met'}")
PY
