#!/usr/bin/env bash
# Gate load benchmark: the gate against a minimal hyper server, closed loop (wrk),
# open model at 50/80/95 % of the maximum, and a start spike. See bench/gate.py.
#   bench/gate.sh [SECONDS] [CONNECTIONS] [SPIKE] [ROUNDS: each load level that many times, medians]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet -p flashsale --bin flashsale
cargo build --release --quiet -p flashsale-bench-tools
exec python3 bench/gate.py "$@"
