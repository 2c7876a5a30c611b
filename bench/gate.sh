#!/usr/bin/env bash
# Gate load benchmark: wrk against the gate and a minimal hyper server. See bench/gate.py.
#   bench/gate.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin flashsale --example minimal_http
exec python3 bench/gate.py "$@"
