#!/usr/bin/env bash
# Build benchmark: a 10,000-item sale built by flashsale and, with equivalent
# templates, by Hugo, in the same run. Prints wall time (median of 3) and peak
# memory of each, and the ratios. Goal: flashsale ≤ 0.5 × Hugo's time, < 200 MiB.
#
#   bench/build.sh [ITEMS]        (default 10000; needs Debian's `hugo`)
#
# The sales are generated in $BENCH_DIR (default: a tmpfs under /dev/shm when
# there is one). On ext4, deleting 10,000 files and creating 10,000 more within
# 30 s makes the kernel's inode allocator skip the just-deleted inodes one by
# one (ext4 `recently_deleted`), which costs both tools seconds and measures the
# file system instead of the builders; tmpfs measures the builders.

set -euo pipefail
cd "$(dirname "$0")/.."
items=${1:-10000}
if [ -z "${BENCH_DIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then BENCH_DIR=/dev/shm/flashsale-bench; fi
work=${BENCH_DIR:-bench/work}
echo "== file system under $work: $(df -T "$(dirname "$work")" | awk 'NR==2 {print $2}')"

command -v hugo >/dev/null || { echo "installing hugo (Debian package)"; apt-get install -y -qq hugo >/dev/null; }
cargo build --release --quiet
bin=$PWD/target/release/flashsale

echo "== generating a sale of $items items in $work"
rm -rf "$work" && mkdir -p "$work"
python3 bench/gen.py "$items" "$work"
words=$(sed -n '/^+++$/,$p' "$work/sale/items/item-00000.md" | tail -n +2 | sed '1,/^+++$/d' | wc -w)
echo "   (each description ~$words words: heading, list, link, table)"

run() { python3 bench/run.py "$1"; }
fs_full=$(run "{\"cmd\": [\"$bin\", \"-q\", \"build\"], \"cwd\": \"$work/sale\", \"before\": \"rm -rf public\"}")
fs_noop=$(run "{\"cmd\": [\"$bin\", \"-q\", \"build\"], \"cwd\": \"$work/sale\"}")
hugo_full=$(run "{\"cmd\": [\"hugo\", \"--quiet\"], \"cwd\": \"$work/hugo\", \"before\": \"rm -rf public resources\"}")
pages_fs=$(find "$work/sale/public" -name '*.html' | wc -l)
pages_hugo=$(find "$work/hugo/public" -name '*.html' | wc -l)

python3 - "$fs_full" "$fs_noop" "$hugo_full" "$pages_fs" "$pages_hugo" "$(hugo version | cut -d' ' -f2)" <<'PY'
import json, sys
full, noop, hugo = (json.loads(a) for a in sys.argv[1:4])
pf, ph, hv = sys.argv[4], sys.argv[5], sys.argv[6]
print(f"{'':28} {'time':>9} {'peak memory':>12} {'html pages':>11}")
print(f"{'flashsale build (clean)':28} {full['seconds']:8.2f}s {full['peak_mib']:9.0f} MiB {pf:>11}")
print(f"{'flashsale build (no change)':28} {noop['seconds']:8.2f}s {noop['peak_mib']:9.0f} MiB")
print(f"{'hugo ' + hv + ' (clean)':28} {hugo['seconds']:8.2f}s {hugo['peak_mib']:9.0f} MiB {ph:>11}")
t = full['seconds'] / hugo['seconds']
m = full['peak_mib'] / hugo['peak_mib']
print(f"ratio flashsale/hugo: time {t:.2f}, memory {m:.2f}")
ok = t <= 0.5 and full['peak_mib'] < 200
print(f"goal (time ratio <= 0.50, peak < 200 MiB): {'met' if ok else 'NOT met'}")
PY
