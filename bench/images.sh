#!/usr/bin/env bash
# Image benchmark: 100 camera-size JPEGs made responsive by flashsale and by
# Hugo 0.111 (Debian's), in the same run, on the disk that holds this checkout.
# See bench/images.py for what is measured and the goals.
#
#   bench/images.sh [PHOTOS] [ROUNDS]     (defaults 100 and 3)
#
# The photos are generated once (bench/tools' `photo`, the tests' own
# generator) into target/bench-images/photos and kept between runs.

set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-100}
rounds=${2:-3}
work=$PWD/target/bench-images
command -v hugo >/dev/null || { echo "installing hugo (Debian package)"; apt-get install -y -qq hugo >/dev/null; }
cargo build --release --quiet
cargo build --release --quiet -p flashsale-bench-tools --bin photo
photos=$work/photos-$count
if [ ! -e "$photos/.done" ]; then
  echo "== generating $count camera JPEGs (4000x3000) into $photos"
  rm -rf "$photos"
  target/release/photo "$photos" "$count" 4000 3000
  touch "$photos/.done"
fi
echo "== $(hugo version | head -1)"
python3 bench/images.py "$work/run" "$photos" "$rounds"
