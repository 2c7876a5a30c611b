#!/usr/bin/env bash
# Publish benchmark: flashsale publish vs aws s3 sync on a 10,000-item sale and
# a local S3 server (moto). See bench/publish.py.   bench/publish.sh [ITEMS]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -e target/moto/.installed ]; then
  python3 -m venv target/moto
  target/moto/bin/pip install -q 'moto[s3,cloudfront]>=5,<6' flask flask-cors awscli
  touch target/moto/.installed
fi
cargo build --release --quiet
exec python3 bench/publish.py "$@"
