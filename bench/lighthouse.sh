#!/usr/bin/env bash
# Lighthouse audit of the demo sale, as a shop's web team would run it:
# Lighthouse 12.2.3 (npm, pinned: 13.x wants Node 22, Debian has 20) with
# Debian's Chromium, mobile emulation (Lighthouse's default: a mid-range phone,
# throttled 4G), against `flashsale serve` on the repository's site.toml. The
# item page, the listing page and ended.html, RUNS times each; prints the four
# category scores and the cumulative layout shift of every run and the lowest
# of each. Goal: 1.00 in all four categories on all three pages.
#
#   bench/lighthouse.sh [RUNS]      (default 3)
#   PHOTO=1 bench/lighthouse.sh     the mug's image a 12-megapixel camera JPEG
#                                   (4000x3000, generated: bench/tools photo)
#   LANGUAGE=zh-CN CURRENCY=CNY bench/lighthouse.sh
#                                   the demo in another shipped language
#   SALE=examples/two-languages bench/lighthouse.sh
#                                   that sale instead of the demo: its item
#                                   (items/mug/), listing and ended pages in
#                                   Chinese and in English (/en/)
#
# Scores are absolute (0 to 1), so there is no peer to divide by; the page
# weight next to them is what `flashsale check` holds to its 14 KiB budget.

set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
npm_dir=target/bench-npm
if [ ! -x "$npm_dir/node_modules/.bin/lighthouse" ]; then
  echo "== installing lighthouse 12.2.3 into $npm_dir (npm)"
  mkdir -p "$npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund --silent -E lighthouse@12.2.3
fi
command -v chromium >/dev/null || { echo "installing chromium (Debian package)"; apt-get install -y -qq chromium >/dev/null; }
cargo build --release --quiet
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
if [ -n "${SALE:-}" ]; then
  cp -r "$SALE"/. "$work/"
  rm -rf "$work/public"
  export LH_PAGES="item=items/mug/ listing= ended=ended.html en-item=en/items/mug/ en-list=en/ en-ended=en/ended.html"
  echo "== the sale in $SALE"
else
  cp site.toml "$work/"
  cp -r static themes "$work/"
fi
if [ -n "${LANGUAGE:-}" ]; then
  sed -i "s/^language = .*/language = \"$LANGUAGE\"/; s/^currency = .*/currency = \"${CURRENCY:-EUR}\"/" "$work/site.toml"
  echo "== the demo in language $LANGUAGE, currency ${CURRENCY:-EUR}"
fi
if [ "${PHOTO:-0}" = 1 ]; then
  cargo build --release --quiet -p flashsale-bench-tools --bin photo
  target/release/photo "$work/camera" 1 4000 3000
  mv "$work/camera/photo-0.jpg" "$work/static/images/mug.jpg"
  sed -i 's#images/mug.svg#images/mug.jpg#' "$work/site.toml"
  echo "== the mug's image: a 4000x3000 camera JPEG, $(stat -c %s "$work/static/images/mug.jpg") bytes"
  target/release/flashsale -c "$work/site.toml" build
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/release/flashsale -c "$work/site.toml" serve --no-watch --port "$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/" >/dev/null && break
  sleep 0.1
done
echo "== $(chromium --version 2>/dev/null | head -1); lighthouse $("$npm_dir/node_modules/.bin/lighthouse" --version)"
target/release/flashsale -c "$work/site.toml" check
python3 bench/lighthouse.py "http://127.0.0.1:$port" "$runs" "$npm_dir/node_modules/.bin/lighthouse"
