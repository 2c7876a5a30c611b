#!/usr/bin/env bash
# Edge simulation: a crowd of pages polling sale.js through a real shared cache
# (Varnish) in front of the S3 stand-in (moto), across a real `flashsale open`.
# See bench/edge.py.   bench/edge.sh [VIEWERS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v varnishd >/dev/null; then
  echo "installing varnish (Debian package)"
  apt-get update -qq && apt-get install -y -qq varnish >/dev/null
fi
if [ ! -e target/moto/.installed ]; then
  python3 -m venv target/moto
  target/moto/bin/pip install -q 'moto[s3,cloudfront]>=5,<6' flask flask-cors awscli
  touch target/moto/.installed
fi
cargo build --release --quiet --bin flashsale
exec python3 bench/edge.py "$@"
