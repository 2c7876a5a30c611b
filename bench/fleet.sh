#!/usr/bin/env bash
# Fleet benchmark: 2 gates on a Redis ledger vs 2 gates in local mode. See bench/fleet.py.
#   bench/fleet.sh [SECONDS] [CONNECTIONS] [TOPOLOGIES: single,sentinel,cluster; also single-shm, an extra row]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages)"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release --quiet --bin flashsale
exec python3 bench/fleet.py "$@"
